"""PastVu (https://pastvu.com): historical photos pinned on a map.

``tiles`` (areas, counter-clockwise rings), ``api`` (calls and error
bodies), ``mapping`` (payload → record, watermark strip) are pure and
tested without a network; ``spider`` harvests with them.
"""
