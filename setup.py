"""The one compiled module, `myshift_packets` (everything else is in pyproject.toml).

`optional`: where no C compiler is found the install still succeeds and the extractor
uses the pure-Python splitter it falls back on (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "myshift_packets",
            sources=["functions/myshift_packets.c"],
            py_limited_api=True,
            extra_compile_args=["-O2"],
            optional=True,
        )
    ],
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
