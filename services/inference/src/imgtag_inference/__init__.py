"""ImgTag inference service."""
