"""Build of fastdrop's Cython extensions.

Everything about compilation lives here: the OpenMP probe, the Cython directives and the flags.
OpenMP is optional: when a tiny ``#pragma omp parallel`` program does not compile and run, the
build warns and produces serial extensions that give bit-identical results.
Set FASTDROP_DEBUG=1 to turn bounds checking and other safety checks back on.
Set FASTDROP_NO_OPENMP=1 to force the serial build (tests compare it with the parallel one).
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTDROP_DEBUG", "0") not in ("", "0")
NO_OPENMP = os.environ.get("FASTDROP_NO_OPENMP", "0") not in ("", "0")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
}

PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d", n > 0);
        return 0;
    }
    """
)


def openmp_flags(compiler):
    """(compile, link) flags for OpenMP with this compiler, as scikit-learn chooses them."""
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin" and "openmp" in os.environ.get("CPPFLAGS", ""):
        # Apple clang: the user supplies -Xpreprocessor -fopenmp and -lomp through the env.
        return [], []
    return ["-fopenmp"], ["-fopenmp"]


def probe_openmp(compiler):
    """True when a tiny OpenMP program compiles, links and runs with these flags."""
    cflags, ldflags = openmp_flags(compiler)
    tmp = tempfile.mkdtemp()
    cwd = os.getcwd()
    try:
        os.chdir(tmp)
        with open("probe.c", "w") as f:
            f.write(PROBE)
        objects = compiler.compile(["probe.c"], output_dir="objects", extra_postargs=cflags)
        compiler.link_executable(objects, "probe", extra_postargs=ldflags)
        out = subprocess.run([os.path.join(tmp, "probe")], capture_output=True, text=True,
                             check=True).stdout
        return out.strip() == "1"
    except Exception:  # any failure means: no usable OpenMP
        return False
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    def build_extensions(self):
        use_openmp = not NO_OPENMP and probe_openmp(self.compiler)
        if not use_openmp:
            warnings.warn(
                "fastdrop: OpenMP is not available (or FASTDROP_NO_OPENMP is set); building "
                "serial kernels. Results are identical, only single-threaded."
            )
        cflags, ldflags = openmp_flags(self.compiler) if use_openmp else ([], [])
        for ext in self.extensions:
            ext.extra_compile_args += cflags
            ext.extra_link_args += ldflags
        super().build_extensions()


def extension(name, **kwargs):
    # -fno-math-errno: nothing reads errno, and it lets sqrt vectorize. -ffp-contract=off: no
    # fused multiply-adds, so the AVX2 / AVX-512 paths round exactly as the portable code does.
    args = ([] if sysconfig.get_platform().startswith("win")
            else ["-O3", "-fno-math-errno", "-ffp-contract=off"])
    return Extension(
        f"fastdrop.{name}",
        [f"fastdrop/{name}.pyx"],
        include_dirs=[np.get_include(), "fastdrop"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
        extra_compile_args=args,
        **kwargs,
    )


setup(
    ext_modules=cythonize(
        [
            extension("_openmp_helpers", depends=["fastdrop/_blas_pool.h"]),
            extension("_kernels", depends=["fastdrop/_philox.h", "fastdrop/_dropout_kernels.h",
                                           "fastdrop/_noise_kernels.h",
                                           "fastdrop/_simd.h", "fastdrop/_simd.pxi"]),
            extension("_nn_kernels", depends=["fastdrop/_optim.h", "fastdrop/_simd.h",
                                              "fastdrop/_simd.pxi", "fastdrop/_step_loop.pxi",
                                              "fastdrop/_step_loop.h",
                                              "fastdrop/_dropout_kernels.h"]),
        ],
        compiler_directives=DIRECTIVES,
    ),
    cmdclass={"build_ext": BuildExt},
)
