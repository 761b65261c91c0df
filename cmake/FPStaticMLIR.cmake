#===- FPStaticMLIR.cmake - Find MLIR 22 and link it statically ---------------===#
#
# Debian's MLIR targets link LLVM as one shared library (libLLVM.so.22.1,
# 150 MB), which the GPU machines lack. We swap that item for the static LLVM
# component archives so fp-opt and the runtime carry their own copy (README,
# "Build options").
#
#===------------------------------------------------------------------------===#
find_package(MLIR REQUIRED CONFIG
  HINTS /usr/lib/llvm-22/lib/cmake/mlir)
message(STATUS "Using MLIRConfig.cmake in: ${MLIR_DIR}")
message(STATUS "Using LLVMConfig.cmake in: ${LLVM_DIR}")

list(APPEND CMAKE_MODULE_PATH "${MLIR_CMAKE_DIR}" "${LLVM_CMAKE_DIR}")
set(LLVM_LINK_LLVM_DYLIB OFF)
include(TableGen)
include(AddLLVM)
include(AddMLIR)

include_directories(SYSTEM ${LLVM_INCLUDE_DIRS} ${MLIR_INCLUDE_DIRS})
add_definitions(${LLVM_DEFINITIONS})
if(NOT LLVM_ENABLE_RTTI)
  # Match LLVM's ABI for classes with vtables defined in LLVM.
  set(FP_NO_RTTI_FLAG -fno-rtti)
endif()

llvm_map_components_to_libnames(FP_LLVM_STATIC_LIBS
  support demangle core binaryformat remarks bitstreamreader targetparser)

foreach(target IN LISTS MLIR_EXPORTED_TARGETS)
  if(TARGET ${target} AND target MATCHES "^MLIR")
    get_target_property(links ${target} INTERFACE_LINK_LIBRARIES)
    if(links)
      list(FIND links LLVM llvmIndex)
      if(NOT llvmIndex EQUAL -1)
        list(REMOVE_ITEM links LLVM)
        list(APPEND links ${FP_LLVM_STATIC_LIBS})
        set_target_properties(${target} PROPERTIES INTERFACE_LINK_LIBRARIES "${links}")
      endif()
    endif()
  endif()
endforeach()
