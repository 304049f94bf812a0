"""Where galley's config comes from.  Each source reports the resources it holds."""
