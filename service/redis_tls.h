/* redis_tls.h — private to the redis_ files: the TLS side of a Redis connection (rediss://) with
 * OpenSSL: the client context (TLS 1.2 minimum, the server's certificate verified against the
 * system's CA store or a given CA file, an optional client certificate), a session per connection
 * (host name or IP address checked, SNI sent for names), and the reason of a failed handshake in
 * words that tell a wrong CA, an expired certificate and a wrong host name apart. */
#ifndef CW_REDIS_TLS_H
#define CW_REDIS_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* The client context, shared by every connection of a store (SSL_CTX_up_ref per holder). ca_file
 * "" or NULL: the system's store; cert_file: the client certificate (a chain may follow it),
 * key_file its key ("" = in cert_file). NULL with msg naming the file and the reason. */
SSL_CTX *rtls_ctx_new(const char *ca_file, const char *cert_file, const char *key_file, char *msg, size_t msg_size);

/* A client session on the connected socket fd, for host: the certificate must name it (a DNS name,
 * or an IP address in its subjectAltName); SNI is sent unless host is an IP literal. NULL when out
 * of memory or host is not acceptable. */
SSL *rtls_session(SSL_CTX *ctx, int fd, const char *host);

/* Why an SSL_connect / SSL_read / SSL_write returning `ret` failed (call before anything else
 * touches the thread's OpenSSL error queue): the verification result when the server's certificate
 * was refused, else OpenSSL's reason. */
void rtls_failure(SSL *ssl, int ret, char *why, size_t size);

#endif
