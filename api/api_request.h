/* api_request.h — one request's lifecycle as libmicrohttpd's callbacks (api_request.c). Internal
 * to api/: api_server.c hands them to MHD_start_daemon with the struct api_server as the access
 * handler's cls; nothing calls them directly. */
#ifndef CW_API_REQUEST_H
#define CW_API_REQUEST_H

#include <microhttpd.h>
#include <stddef.h>

/* MHD_OPTION_URI_LOG_CALLBACK: judges the raw request target, before libmicrohttpd unescapes it,
 * and returns the request record it will hand to api_request_access as *con_cls. */
void *api_request_uri(void *cls, const char *uri, struct MHD_Connection *conn);

/* The access handler: the headers, then the body in pieces, then the reply. */
enum MHD_Result api_request_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                   const char *version, const char *upload_data, size_t *upload_data_size,
                                   void **con_cls);

/* MHD_OPTION_NOTIFY_COMPLETED: metrics, admission released, the record freed. */
void api_request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe);

#endif
