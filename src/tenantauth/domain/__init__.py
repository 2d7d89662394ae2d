"""The domain core: plain Python, no web framework, driver or cache client imports."""
