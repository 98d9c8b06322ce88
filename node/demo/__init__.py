"""The demos: `community` (the networked demo community `trustnode demo` starts)
and `walkthrough` (`trustnode demo --walkthrough`, the layers one by one, offline)."""
