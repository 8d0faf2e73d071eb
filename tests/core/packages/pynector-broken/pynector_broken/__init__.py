"""A transport and plugin module that cannot be imported, as when a dependency is missing."""

raise ImportError("pynector_broken needs the 'frobnicate' library, which is not installed")
