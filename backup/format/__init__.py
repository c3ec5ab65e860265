"""The backup file format: the document and its versions (`document`, `upgrades`), the value
encoding (`values`), the streaming reader and its guard (`reader`, `number_guard`) and the byte
streams, compressed or not (`streams`). Nothing here touches the database."""
