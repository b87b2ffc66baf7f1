"""ImgTag catalog service."""
