"""Images larger than memory: lazy region readers, streamed prediction and streamed outputs.

:mod:`drunet.giant.regions` is the contract between the parts: a :class:`RegionSource` reads any
rectangle of a giant image (tiled TIFF, OME-TIFF, slides, OME-Zarr, GeoTIFF) without decoding the
rest, and the writers take the finished mask as full-width bands of rows, top to bottom.
"""
