"""Small applications the demo and tests run behind Envoy."""
