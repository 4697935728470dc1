#!/usr/bin/python3
"""Differential test of picoflow's cron against Debian's python3-croniter (1.3.5).

Usage: /usr/bin/python3 cron_differential.py PATH/TO/cron_oracle

Generates reproducible random cron expressions (fixed seed), asks the oracle
(tests/cron_oracle.cc, one batch over stdin) and croniter for the next fire
strictly after a start instant in a time zone, and compares the two. Prints
`compared N, mismatched M` and exits 1 on any mismatch.

Only cases where both implementations follow the same rules are compared;
the rest are counted and reported as skipped:

* Day-rule: picoflow combines day-of-month and day-of-week like Vixie cron /
  cronie (OR only if NEITHER field text starts with '*'), croniter decides on
  the expanded sets (OR unless a set covers the whole range). They disagree
  for `*/n` day fields next to a restricted other day field (cronie: AND,
  croniter: OR) and for full ranges like `1-31` (cronie: OR, croniter: AND).
  Those cases are unit-tested in cron_test.cc.
* DST days: a start or a result within 36 hours of a UTC-offset change.
  picoflow fires a gap time at the end of the gap and a repeated time once;
  croniter differs there.
* croniter 1.3.5 shifts a result by the DST delta when the UTC offset at the
  result differs from the one at the start (`0 12 * * *` from Berlin
  2024-03-30 13:00 gives 11:00 CEST). Those cases are compared on wall-clock
  time instead: croniter runs on the naive local start time and its naive
  result must equal picoflow's result as local time.
* croniter 1.3.5 jumps from February to a day-of-month value February lacks
  by adding days, overshooting March 1 (`0 0 1,30 * *` from 2023-02-02 gives
  2023-03-30, `0 0 */3 * *` from 2024-02-29 gives 2024-03-04). Cases whose
  answer is March 1 or 2 with a day-of-month value above 28 are skipped.
* picoflow gives up after 5 years (`none`), croniter after 50: a croniter
  result past the 5 years agrees with `none`.

Known croniter quirks the generator avoids: in 6-field expressions croniter
puts seconds LAST (the oracle's text is rotated for it) and does not fold
day-of-week 7 into Sunday, so 6-field day-of-week fields never contain 7;
croniter reads `FRI-SUN` as 5-7 (picoflow rejects the reversed range) and does
not know `?` (given `*` instead).
"""

import datetime
import random
import subprocess
import sys
from zoneinfo import ZoneInfo

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from exec_wrapper import command

SEED = 20240331
EXPRESSIONS = 10000
CASES_PER_EXPRESSION = 3
INVALID_SHARE = 0.04
HORIZON_SECONDS = 5 * 31556952  # picoflow's search limit: 5 Gregorian years
NEAR_TRANSITION_SECONDS = 36 * 3600

ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata',
         'Australia/Lord_Howe', 'Asia/Kathmandu', 'America/Sao_Paulo']


def utc(*args):
    return int(datetime.datetime(*args, tzinfo=datetime.timezone.utc).timestamp())


# Start instants near month, year and leap-day boundaries.
STARTS = [utc(2024, 1, 1), utc(2024, 2, 28, 23, 59, 59), utc(2024, 2, 29, 12),
          utc(2024, 6, 15, 12, 34, 56), utc(2024, 12, 31, 23, 59, 30),
          utc(2025, 1, 31, 23), utc(2025, 7, 4, 3, 2, 1), utc(2026, 11, 30, 22, 10, 5),
          utc(2027, 12, 31, 23, 59, 59), utc(2028, 2, 28, 23)]

MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN',
          'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC']
DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT']


class Field:
    """One cron field: value range (day-of-week 0-7), names, '*' probability."""

    def __init__(self, name, low, high, star, names=None, names_base=0):
        self.name, self.low, self.high, self.star = name, low, high, star
        self.names, self.names_base = names, names_base


SECOND = Field('second', 0, 59, 0.3)
MINUTE = Field('minute', 0, 59, 0.2)
HOUR = Field('hour', 0, 23, 0.35)
DOM = Field('dom', 1, 31, 0.5)
MONTH = Field('month', 1, 12, 0.55, MONTHS, 1)
DOW = Field('dow', 0, 7, 0.5, DAYS, 0)


def render(rng, field, value):
    if field.names and value - field.names_base < len(field.names) and rng.random() < 0.3:
        name = field.names[value - field.names_base]
        return rng.choice([name, name.lower(), name.capitalize()])
    return str(value)


def gen_item(rng, field, high):
    a, b = sorted(rng.randint(field.low, high) for _ in range(2))
    step = rng.choice([1, 2, 2, 3, 4, 5, 6, 7, 10, 15, 20, 40])
    kind = rng.choices(['value', 'range', 'star_step', 'range_step', 'value_step'],
                       [35, 20, 15, 15, 10])[0]
    if kind == 'value':
        return render(rng, field, a)
    if kind == 'range':
        return '%s-%s' % (render(rng, field, a), render(rng, field, b))
    if kind == 'star_step':
        return '*/%d' % step
    if kind == 'range_step':
        return '%s-%s/%d' % (render(rng, field, a), render(rng, field, b), step)
    return '%s/%d' % (render(rng, field, a), step)


def gen_field(rng, field, high):
    if rng.random() < field.star:
        return '?' if field in (DOM, DOW) and rng.random() < 0.1 else '*'
    count = rng.choices([1, 2, 3], [60, 25, 15])[0]
    return ','.join(gen_item(rng, field, high) for _ in range(count))


def value_of(field, token):
    if token.isdigit():
        return int(token)
    return field.names.index(token.upper()) + field.names_base


def expand(field, text):
    """The set a field stands for, before folding day-of-week 7 into 0."""
    if text in ('*', '?'):
        return set(range(field.low, field.high + 1))
    values = set()
    for item in text.split(','):
        base, _, step = item.partition('/')
        if base == '*':
            low, high = field.low, field.high
        elif '-' in base:
            low, high = (value_of(field, t) for t in base.split('-'))
        else:
            low = value_of(field, base)
            high = field.high if step else low
        values.update(range(low, high + 1, int(step or 1)))
    return values


def day_rules_agree(dom, dow):
    """True if cronie's and croniter's DOM/DOW combination coincide."""
    cronie_or = not (dom[0] in '*?' or dow[0] in '*?')
    dom_full = expand(DOM, dom) == set(range(1, 32))
    dow_full = {v % 7 for v in expand(DOW, dow)} == set(range(7))
    croniter_or = not (dom_full or dow_full)
    return cronie_or == croniter_or


def february_overshoot(dom):
    """True if croniter may overshoot March 1 for this day-of-month field."""
    values = expand(DOM, dom)
    return values != set(range(1, 32)) and max(values) > 28


def gen_valid(rng):
    """(picoflow text, croniter text, day rules agree, February overshoot)."""
    if rng.random() < 0.03:
        macro = rng.choice(['@yearly', '@annually', '@monthly', '@weekly', '@daily',
                            '@midnight', '@hourly'])
        return macro, macro, True, False
    six = rng.random() < 0.3
    fields = [gen_field(rng, f, f.high) for f in (MINUTE, HOUR, DOM, MONTH)]
    dow = gen_field(rng, DOW, 7)
    while six and 7 in expand(DOW, dow) and dow not in ('*', '?'):
        dow = gen_field(rng, DOW, 6)  # croniter does not fold 7 in 6-field mode
    fields.append(dow)
    theirs = ['*' if f == '?' else f for f in fields]
    agree = day_rules_agree(fields[2], fields[4])
    overshoot = february_overshoot(fields[2])
    if six:
        second = gen_field(rng, SECOND, 59)
        return ' '.join([second] + fields), ' '.join(theirs + [second]), agree, overshoot
    return ' '.join(fields), ' '.join(theirs), agree, overshoot


def gen_invalid(rng):
    """An expression both sides must reject (5 fields, to stay clear of quirks)."""
    fields = ['*', '*', '*', '*', '*']
    kind = rng.randrange(6)
    if kind == 0:
        index, bad = rng.choice([(0, '60'), (1, '24'), (2, '32'), (2, '0'), (3, '13'),
                                 (3, '0'), (4, '8')])
        fields[index] = bad
    elif kind == 1:
        fields[rng.randrange(4)] = '%d-%d' % (rng.randint(6, 9), rng.randint(1, 5))
    elif kind == 2:
        fields[rng.randrange(5)] = '*/0'
    elif kind == 3:
        fields[rng.choice([3, 4])] = rng.choice(['FOO', 'JANUARY', 'x1'])
    elif kind == 4:
        fields = fields[:rng.choice([1, 3, 4])]
    else:
        fields = fields + ['*', '*']
    text = ' '.join(fields)
    return text, text, True, False


def build_cases(rng):
    cases, skipped_day_rule = [], 0
    for _ in range(EXPRESSIONS):
        generate = gen_invalid if rng.random() < INVALID_SHARE else gen_valid
        ours, theirs, agree, overshoot = generate(rng)
        for _ in range(CASES_PER_EXPRESSION):
            start = rng.choice(STARTS)
            if rng.random() < 0.5:
                start += rng.randint(-40 * 86400, 40 * 86400)
            if not agree:
                skipped_day_rule += 1
                continue
            cases.append((ours, theirs, rng.choice(ZONES), start, overshoot))
    return cases, skipped_day_rule


def run_oracle(oracle, cases):
    lines = ''.join('%s\t%s\t%d\n' % (case[0], case[2], case[3]) for case in cases)
    out = subprocess.run(command(oracle), input=lines, capture_output=True, text=True, check=True)
    answers = out.stdout.splitlines()
    assert len(answers) == len(cases), 'oracle answered %d of %d' % (len(answers), len(cases))
    return answers


def ask_croniter(text, start):
    """croniter's next fire for an aware or naive start, or 'none' / 'error'."""
    try:
        return croniter(text, start).get_next(datetime.datetime)
    except CroniterBadDateError:
        return 'none'
    except (CroniterBadCronError, ValueError):
        return 'error'


def offset(zone, t):
    return datetime.datetime.fromtimestamp(t, zone).utcoffset()


def near_transition(zone, t):
    return offset(zone, t - NEAR_TRANSITION_SECONDS) != offset(zone, t + NEAR_TRANSITION_SECONDS)


def compare(case, answer, stats):
    """Returns None if the case agrees or is skipped, else a description."""
    _, theirs_text, zone_name, start, overshoot = case
    zone = ZoneInfo(zone_name)
    if answer.startswith('error'):
        theirs = ask_croniter(theirs_text, datetime.datetime.fromtimestamp(start, zone))
        agree = theirs == 'error' or ('never fires' in answer and theirs == 'none')
        stats['rejected'] += 1
        return None if agree else 'picoflow %s, croniter %s' % (answer, theirs)
    if near_transition(zone, start) or (answer != 'none' and near_transition(zone, int(answer))):
        stats['skipped_dst_day'] += 1
        return None
    if overshoot and answer != 'none' and is_march_1_or_2(zone, int(answer)):
        stats['skipped_february'] += 1
        return None
    if answer != 'none' and offset(zone, start) != offset(zone, int(answer)):
        return compare_wall_clock(case, int(answer), stats)
    theirs = ask_croniter(theirs_text, datetime.datetime.fromtimestamp(start, zone))
    stats['compared_aware'] += 1
    if answer == 'none':
        beyond = (isinstance(theirs, datetime.datetime)
                  and theirs.timestamp() > start + HORIZON_SECONDS)
        return None if theirs == 'none' or beyond else 'picoflow none, croniter %s' % theirs
    if isinstance(theirs, datetime.datetime) and int(theirs.timestamp()) == int(answer):
        return None
    return 'picoflow %s, croniter %s' % (datetime.datetime.fromtimestamp(int(answer), zone), theirs)


def is_march_1_or_2(zone, t):
    local = datetime.datetime.fromtimestamp(t, zone)
    return local.month == 3 and local.day <= 2


def compare_wall_clock(case, answer, stats):
    _, theirs_text, zone_name, start, _ = case
    zone = ZoneInfo(zone_name)
    local_start = datetime.datetime.fromtimestamp(start, zone).replace(tzinfo=None)
    ours = datetime.datetime.fromtimestamp(answer, zone).replace(tzinfo=None)
    theirs = ask_croniter(theirs_text, local_start)
    stats['compared_wall_clock'] += 1
    return None if theirs == ours else 'picoflow %s (local), croniter %s (naive)' % (ours, theirs)


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: cron_differential.py PATH/TO/cron_oracle')
    cases, skipped_day_rule = build_cases(random.Random(SEED))
    answers = run_oracle(sys.argv[1], cases)
    stats = {'compared_aware': 0, 'compared_wall_clock': 0, 'rejected': 0, 'skipped_dst_day': 0,
             'skipped_february': 0}
    mismatches = []
    for case, answer in zip(cases, answers):
        problem = compare(case, answer, stats)
        if problem:
            mismatches.append((case, problem))
    compared = stats['compared_aware'] + stats['compared_wall_clock'] + stats['rejected']
    print('%d expressions, %d cases: %d tz-aware, %d wall-clock (croniter DST shift), '
          '%d rejected by both sides; skipped %d DST-day, %d Vixie day-rule, %d croniter February'
          % (EXPRESSIONS, len(cases) + skipped_day_rule, stats['compared_aware'],
             stats['compared_wall_clock'], stats['rejected'], stats['skipped_dst_day'],
             skipped_day_rule, stats['skipped_february']))
    print('compared %d, mismatched %d' % (compared, len(mismatches)))
    for (ours, theirs, zone, start, _), problem in mismatches[:10]:
        print('MISMATCH %r (croniter %r) in %s after %d: %s' % (ours, theirs, zone, start, problem))
    return 1 if mismatches else 0


if __name__ == '__main__':
    sys.exit(main())
