"""Self-contained HTML pages: the building blocks (html.py, figures.py, markdown.py) and the
``drunet compare`` report; ``drunet evaluate``'s report is :mod:`drunet.evaluation.report`."""
