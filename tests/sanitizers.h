#pragma once
// What a test must know of a sanitized build (build-asan, docs/testing.md).

namespace picoflow::test {

/// True under AddressSanitizer: freed memory waits in its quarantine (up to
/// 256 MiB) and every allocation carries shadow and redzones, so a process's
/// resident memory says nothing about what the code keeps. Bounds on RSS are
/// checked only when this is false; what they guard still runs.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace picoflow::test
