"""Running the service: uvicorn's options, several workers and how connections are balanced between them."""
