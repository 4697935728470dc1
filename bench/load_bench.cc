// Workflow load benchmark: load + validate + DAG of generated 100, 1,000 and
// 10,000-task workflows, from text in memory (the file read is not timed).
// Prints one line per size: tasks, bytes, median and min over repeats.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "common/workflow_load.h"

namespace {

// Tasks in layers of 10; each depends on two tasks of the layer before, like
// a wide ETL graph. Block-style YAML, kept under the 1 MiB file limit at
// 10,000 tasks (about 90 bytes a task).
std::string Generate(int tasks) {
  std::string y = "name: bench\nconfig:\n  max_parallel: 8\n  retry_default: 1\ntasks:\n";
  for (int i = 0; i < tasks; ++i) {
    y += "  - name: t" + std::to_string(i) + "\n    type: shell\n";
    if (i >= 10) {
      const int base = (i / 10 - 1) * 10;
      y += "    depends_on: [t" + std::to_string(base + i % 10) + ", t" +
           std::to_string(base + (i + 3) % 10) + "]\n";
    }
    y += "    config: {command: \"echo " + std::to_string(i) + "\"}\n";
  }
  return y;
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 15;
  std::printf("%-8s %-10s %-12s %-12s\n", "tasks", "bytes", "median_ms", "min_ms");
  for (int size : {100, 1000, 10000}) {
    const std::string text = Generate(size);
    std::vector<double> ms;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      picoflow::LoadedWorkflow loaded = picoflow::LoadWorkflowText(text, "bench.yaml");
      const auto t1 = std::chrono::steady_clock::now();
      if (!loaded.ok() || loaded.dag->size() != size) {
        std::fprintf(stderr, "load failed: %s\n",
                     loaded.diagnostics.empty() ? "?" : loaded.diagnostics[0].ToString().c_str());
        return 1;
      }
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    std::printf("%-8d %-10zu %-12.2f %-12.2f\n", size, text.size(), ms[ms.size() / 2], ms.front());
  }
  return 0;
}
