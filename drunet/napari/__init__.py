"""The napari plugin (``pip install "drunet[napari]"``), declared in ``napari.yaml``:

* :mod:`drunet.napari.widget` — the *Segment* dock widget: a run folder (or a
  ``save_pretrained`` folder) segments the selected image layer into a Labels layer, in a worker
  thread;
* :mod:`drunet.napari.volume` — napari's layer layouts as the Predictor's arrays, and the
  segmentation itself (no Qt);
* :mod:`drunet.napari.reader` — opens the masks and probability files ``drunet predict`` writes.

Only this package imports napari or Qt; ``import drunet`` and the CLI never do.
"""
