"""``adfl serve``: a read-only web view of a run's identity store (``app.create_app``) and the safe
decoding of uploaded query images (``images.decode_image``)."""
