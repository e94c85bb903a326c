"""Reports: generated catalogue docs (terminal tables and HTML reports come with the comparison engine)."""
