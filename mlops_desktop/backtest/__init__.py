"""Back-testing: replay a time-ordered lake dataset window by window against registered versions or refits."""
