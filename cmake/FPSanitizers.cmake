#===- FPSanitizers.cmake - ASan/UBSan and libFuzzer for our own code --------===#
#
# SPDX-License-Identifier: Apache-2.0
#
# Include right after project() (before any add_subdirectory). Two options:
#
#   FP_SANITIZE=address,undefined   -fsanitize=<list> -fno-omit-frame-pointer
#                                   -fno-sanitize-recover=all on every target
#                                   this project compiles. MLIR, LLVM and
#                                   GoogleTest are prebuilt archives, so they
#                                   stay uninstrumented: only our code is
#                                   checked. gcc 12 and clang 22 both work.
#                                   Every executable also gets built-in
#                                   runtime options (fuzz/sanitizers/
#                                   SanitizerDefaults.cpp): ctest, lit and
#                                   plain runs need no ASAN_OPTIONS.
#   FP_FUZZ=ON                      libFuzzer (clang only): our code gets
#                                   -fsanitize=fuzzer-no-link coverage and the
#                                   fuzz/ targets link -fsanitize=fuzzer. OFF:
#                                   the fuzz/ targets are corpus-replay drivers
#                                   (any compiler) that CTest runs.
#
# At the end of the top-level CMakeLists (cmake_language(DEFER)) it also
# defines the fuzz/ and unittests/Reliability/ targets unless those folders
# were added with add_subdirectory, so it can be injected without editing
# CMakeLists.txt:
#   cmake -DCMAKE_PROJECT_FlashPrefill_INCLUDE=<root>/cmake/FPSanitizers.cmake
# (scripts/sanitize.sh and scripts/fuzz.sh do this).
#
#===------------------------------------------------------------------------===#
include_guard(GLOBAL)

set(FP_SANITIZE "" CACHE STRING
  "Sanitizers for the project's own code, e.g. address,undefined (empty: none)")
option(FP_FUZZ "Build fuzz/ as libFuzzer targets (needs clang)" OFF)

set(FP_SANITIZER_FLAGS "")
if(FP_SANITIZE)
  list(APPEND FP_SANITIZER_FLAGS -fsanitize=${FP_SANITIZE}
    -fno-omit-frame-pointer -fno-sanitize-recover=all)
  if(FP_SANITIZE MATCHES "undefined")
    # -fsanitize=vptr makes every user of fp::Plan reference its typeinfo,
    # which libflashprefill.so does not export (flashprefill.map exports
    # fp_* and fp::* functions only).
    list(APPEND FP_SANITIZER_FLAGS -fno-sanitize=vptr)
  endif()
endif()
if(FP_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "FP_FUZZ needs clang (libFuzzer), e.g. "
      "-DCMAKE_CXX_COMPILER=clang++-22 -DCMAKE_C_COMPILER=clang-22 "
      "(apt-get install clang-22 libclang-rt-22-dev)")
  endif()
  list(APPEND FP_SANITIZER_FLAGS -fsanitize=fuzzer-no-link)
endif()
if(FP_SANITIZER_FLAGS)
  message(STATUS "FlashPrefill: instrumenting our targets with ${FP_SANITIZER_FLAGS}")
  # Directory-wide from the top: every target we compile; imported (prebuilt)
  # MLIR/LLVM/GTest targets are not compiled, hence not instrumented.
  add_compile_options(${FP_SANITIZER_FLAGS})
  if(FP_SANITIZE)
    add_link_options(-fsanitize=${FP_SANITIZE})
  endif()
  # Debug info for readable reports; keep the build type's optimization.
  add_compile_options(-g1)
endif()

# Built-in runtime options (allow_user_poisoning=0 for the prebuilt MLIR,
# LeakSanitizer suppressions limited to NVRTC and the driver); added to every
# executable below.
get_filename_component(FP_SANITIZER_DEFAULTS
  ${CMAKE_CURRENT_LIST_DIR}/../fuzz/sanitizers/SanitizerDefaults.cpp ABSOLUTE)

# Every target defined in `dir` and below.
function(fp_collect_targets dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    fp_collect_targets(${sub} subTargets)
    list(APPEND targets ${subTargets})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

# Runs at the end of the top-level CMakeLists.txt.
function(fp_reliability_finalize)
  # clang links no sanitizer runtime into shared libraries: allow the
  # __asan_* / __ubsan_* references that the executable resolves.
  if(FP_SANITIZER_FLAGS AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang"
     AND TARGET flashprefill)
    target_link_options(flashprefill PRIVATE -Wl,-z,undefs)
  endif()
  # Deferred calls may not add subdirectories: include the target files.
  get_property(fuzzAdded GLOBAL PROPERTY FP_FUZZ_DIR_ADDED)
  if(NOT fuzzAdded AND EXISTS ${PROJECT_SOURCE_DIR}/fuzz/FuzzTargets.cmake)
    include(${PROJECT_SOURCE_DIR}/fuzz/FuzzTargets.cmake)
  endif()
  get_property(reliabilityAdded GLOBAL PROPERTY FP_RELIABILITY_DIR_ADDED)
  set(reliability ${PROJECT_SOURCE_DIR}/unittests/Reliability/ReliabilityTests.cmake)
  if(NOT reliabilityAdded AND FP_BUILD_TESTS AND EXISTS ${reliability})
    include(${reliability})
  endif()
  if(FP_SANITIZE AND EXISTS ${FP_SANITIZER_DEFAULTS})
    fp_collect_targets(${CMAKE_SOURCE_DIR} targets)
    foreach(target IN LISTS targets)
      get_target_property(type ${target} TYPE)
      if(type STREQUAL "EXECUTABLE")
        target_sources(${target} PRIVATE ${FP_SANITIZER_DEFAULTS})
      endif()
    endforeach()
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR}
  CALL fp_reliability_finalize)
