"""Golden-reference checks: metrics per output, gates as data, the comparator that runs them."""
