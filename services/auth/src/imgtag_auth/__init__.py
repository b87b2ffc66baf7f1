"""ImgTag auth service."""
