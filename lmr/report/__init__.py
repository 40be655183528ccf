"""Self-contained offline HTML reports: charts (matplotlib SVG), world maps (countryinfo outlines), spans.

Everything a report draws is inline SVG produced by matplotlib; nothing is fetched when the page opens.
``lmr.report.spans`` builds the span report of ``lmr-trainer evaluate`` and ``lmr-worker evaluate``;
``geocode.report`` builds the geocoding report on the same parts.
"""
