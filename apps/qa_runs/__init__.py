"""QA package runs (seed 001): generated API test suites executed against an OpenAPI target."""
