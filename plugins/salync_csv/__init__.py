"""The ``csv`` platform: an ERP's CSV export (a file or a URL) read into the mirror.

It mirrors the CSV mode of Sales Layer's Import Connector: each row is one item keyed by its
item reference, a declared map names the field each column feeds, and each run reads the file
again only when it changed.
"""
