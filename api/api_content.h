/* api_content.h — which request bodies the API accepts, decided from Content-Type and
 * Content-Encoding alone (the decoder tells gzip from plain by its magic bytes anyway). */
#ifndef CW_API_CONTENT_H
#define CW_API_CONTENT_H

enum api_encoding { API_ENC_IDENTITY = 0, API_ENC_GZIP = 1, API_ENC_UNSUPPORTED = -1 };

/* Ingest bodies: application/json, application/x-ndjson, application/gzip,
 * application/octet-stream, with any parameters (charset=...). Case-insensitive. NULL (absent)
 * is refused: a forwarder that names no type is misconfigured. Returns 1 when accepted. */
int api_content_type_ingest(const char *content_type);

/* PATCH bodies: application/json (any parameters). Returns 1 when accepted. */
int api_content_type_json(const char *content_type);

/* Content-Encoding: absent or "identity" → API_ENC_IDENTITY, "gzip" (or "x-gzip") → API_ENC_GZIP,
 * anything else (br, deflate, a list) → API_ENC_UNSUPPORTED. */
int api_content_encoding(const char *content_encoding);

#endif
