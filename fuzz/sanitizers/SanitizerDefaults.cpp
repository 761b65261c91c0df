//===- SanitizerDefaults.cpp - Built-in sanitizer options -------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// cmake/FPSanitizers.cmake adds this file to every executable of a
// sanitizer build, so the binaries behave the same under ctest, lit, the
// scripts or by hand (ASAN_OPTIONS etc. in the environment still override).
//
//  - allow_user_poisoning=0: LLVM's BumpPtrAllocator poisons its slabs with
//    __asan_poison_memory_region when *our* translation units (instrumented)
//    instantiate it, but the prebuilt MLIR/LLVM archives (not instrumented)
//    never unpoison: without this flag every MLIRContext reports a false
//    use-after-poison. Our code makes no manual poisoning calls.
//  - LeakSanitizer: NVRTC and the CUDA driver are dlopen'ed and keep
//    process-lifetime allocations; only those libraries are suppressed.
//
//===----------------------------------------------------------------------===//
extern "C" {

__attribute__((visibility("default"), used)) const char *
__asan_default_options() {
  return "allow_user_poisoning=0:detect_leaks=1:abort_on_error=1:"
         "detect_stack_use_after_return=1:check_initialization_order=1:"
         "strict_string_checks=1:allocator_may_return_null=1";
}

__attribute__((visibility("default"), used)) const char *
__ubsan_default_options() {
  return "print_stacktrace=1:halt_on_error=1";
}

__attribute__((visibility("default"), used)) const char *
__lsan_default_suppressions() {
  return "leak:libnvrtc.so\n"
         "leak:libnvrtc-builtins.so\n"
         "leak:libnvrtc.alt.so\n"
         "leak:libcuda.so\n";
}

} // extern "C"
