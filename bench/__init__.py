"""Speed, memory and trainability benchmarks: `python -m bench.<name> --help`.

Every benchmark is a command, so the package hides TensorFlow's native
start-up lines the way train.py and eval.py do (`exchange_st.console`);
`--verbose` keeps them.
"""

from exchange_st import console

console.quiet_startup()
