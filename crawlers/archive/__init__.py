"""Archive web pages, IIIF and OAI-PMH: pure extraction (response body → ``Found``).

One module per format (``oai``, ``iiif``, ``pages``, ``omeka``, ``commons``),
``sniff`` decides which applies by what came back, ``merge`` joins what
several responses say about one photograph into one record. Nothing here
touches the network or the database; the spider lives in
``crawlers.archive.spider``.
"""
