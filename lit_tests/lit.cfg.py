# -*- Python -*-
# lit configuration of the fp compiler tests.
import os

import lit.formats
import lit.util
from lit.llvm import llvm_config

config.name = "FP"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.fp_obj_root)

config.substitutions.append(("%fp_src", config.fp_source_dir))
llvm_config.with_system_environment(["HOME", "TMPDIR", "CUDA_HOME"])
llvm_config.use_default_substitutions()

# ptxas from the CUDA toolkit assembles the PTX fp-opt emits (REQUIRES: ptxas).
ptxas_dirs = [os.path.join(os.environ[var], "bin")
              for var in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(var)]
ptxas_dirs.append("/usr/local/cuda/bin")
ptxas = lit.util.which("ptxas", os.pathsep.join(ptxas_dirs))
if ptxas:
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", ptxas))

tool_dirs = [config.fp_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(["fp-opt"], tool_dirs)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
