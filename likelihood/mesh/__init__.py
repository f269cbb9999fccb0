"""Source-plane meshes: how traced pixels are interpolated onto the pixelized source's parameters."""
