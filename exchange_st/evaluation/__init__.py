"""Tables 1 and 2 of the paper, the methods they compare, and the measurements in docs/."""
