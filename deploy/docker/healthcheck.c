/*
 * credwatch-healthcheck: the container HEALTHCHECK probe.
 *
 * The runtime image carries no curl, wget, busybox or shell utilities worth attacking, so Docker's HEALTHCHECK runs
 * this one-purpose program instead: it sends `GET PATH HTTP/1.0` to the address credwatch listens on and exits 0 when
 * the answer's status is 200, 1 otherwise (2 on bad usage). It reads the same CREDWATCH_LISTEN the service reads, so
 * changing the port never silently breaks the probe; a wildcard listen address (0.0.0.0, ::, empty) is probed on
 * loopback. CREDWATCH_HEALTHCHECK_ADDR overrides the address. Every step is bounded by one deadline.
 *
 * HTTPS follows the service's own setting: when CREDWATCH_TLS_CERT is set, the probe speaks TLS (GnuTLS, the library
 * libmicrohttpd already brings into the image). It does not verify the server's certificate: it reaches its own
 * container over loopback, sends no secret, and checks that the service answers through its TLS stack. With mutual
 * TLS (CREDWATCH_TLS_CLIENT_CA) it presents CREDWATCH_HEALTHCHECK_CERT and CREDWATCH_HEALTHCHECK_KEY (PEM, a client
 * certificate of that CA); without them the service refuses it, as it refuses any client without a certificate.
 *
 * Usage: credwatch-healthcheck [PATH]   (PATH defaults to /healthz)
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>

#define HC_DEFAULT_LISTEN "127.0.0.1:8080"
#define HC_DEFAULT_PATH "/healthz"
#define HC_TIMEOUT_MS 3000
#define HC_HOST_MAX 256
#define HC_PORT_MAX 16
#define HC_REQUEST_MAX 512
#define HC_STATUS_MAX 64

static long hc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int hc_remaining(long deadline)
{
	long left = deadline - hc_now_ms();
	return left > 0 ? (int)left : 0;
}

/* Splits "host:port" or "[v6]:port" into host and port; maps wildcard hosts to loopback. 0 or -1. */
static int hc_split(const char *addr, char *host, size_t hostsz, char *port, size_t portsz)
{
	const char *colon;
	size_t hlen;

	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (!end || end[1] != ':')
			return -1;
		hlen = (size_t)(end - addr - 1);
		if (hlen >= hostsz)
			return -1;
		memcpy(host, addr + 1, hlen);
		host[hlen] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return -1;
		hlen = (size_t)(colon - addr);
		if (hlen >= hostsz)
			return -1;
		memcpy(host, addr, hlen);
		host[hlen] = '\0';
	}
	if (strlen(colon + 1) == 0 || strlen(colon + 1) >= portsz)
		return -1;
	snprintf(port, portsz, "%s", colon + 1);
	if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
		snprintf(host, hostsz, "127.0.0.1");
	else if (strcmp(host, "::") == 0)
		snprintf(host, hostsz, "::1");
	return 0;
}

/* Connects to one address without blocking past the deadline. Returns the socket or -1. */
static int hc_connect(const struct addrinfo *ai, long deadline)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -1;
	int flags = fcntl(fd, F_GETFL, 0);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		goto fail;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		if (poll(&p, 1, hc_remaining(deadline)) != 1)
			goto fail;
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
			goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* The request's bytes; their length, or -1 when the path does not fit. */
static int hc_request(char *req, size_t size, const char *path)
{
	int n = snprintf(req, size, "GET %s HTTP/1.0\r\nHost: localhost\r\nUser-Agent: credwatch-healthcheck\r\n"
				    "Connection: close\r\n\r\n", path);
	return n < 0 || (size_t)n >= size ? -1 : n;
}

/* The status of a status line "HTTP/1.x NNN ...", or -1. */
static int hc_status(const char *line, size_t got)
{
	if (strncmp(line, "HTTP/1.", 7) != 0 || got < 12 || line[8] != ' ')
		return -1;
	char *end = NULL;
	long status = strtol(line + 9, &end, 10);
	if (end != line + 12)
		return -1;
	return (int)status;
}

/* Sends the request and reads the status line. Returns the HTTP status or -1. */
static int hc_exchange(int fd, const char *path, long deadline)
{
	char req[HC_REQUEST_MAX];
	int n = hc_request(req, sizeof(req), path);
	if (n < 0)
		return -1;
	size_t sent = 0;
	while (sent < (size_t)n) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		if (poll(&p, 1, hc_remaining(deadline)) != 1)
			return -1;
		ssize_t w = send(fd, req + sent, (size_t)n - sent, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (w > 0)
			sent += (size_t)w;
	}
	char line[HC_STATUS_MAX];
	size_t got = 0;
	while (got < sizeof(line) - 1 && !memchr(line, '\n', got)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, hc_remaining(deadline)) != 1)
			return -1;
		ssize_t r = recv(fd, line + got, sizeof(line) - 1 - got, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	line[got] = '\0';
	return hc_status(line, got);
}

/* TLS: the socket blocks again, each call bounded by what is left of the deadline (SO_RCVTIMEO/SO_SNDTIMEO). */
static void hc_bound(int fd, long deadline)
{
	int ms = hc_remaining(deadline);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 + (ms ? 0 : 1) };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A TLS call retried while GnuTLS says it may succeed and time is left. */
#define HC_TLS_RETRY(rc, call, fd, deadline) \
	do { hc_bound(fd, deadline); (rc) = (call); } \
	while ((rc) < 0 && !gnutls_error_is_fatal(rc) && hc_remaining(deadline) > 0)

/* The request over TLS: handshake, request, status line. Returns the HTTP status or -1. */
static int hc_tls_talk(gnutls_session_t s, int fd, const char *req, size_t n, long deadline)
{
	int rc;
	HC_TLS_RETRY(rc, gnutls_handshake(s), fd, deadline);
	if (rc < 0) {
		fprintf(stderr, "credwatch-healthcheck: TLS handshake: %s\n", gnutls_strerror(rc));
		return -1;
	}
	for (size_t sent = 0; sent < n; sent += (size_t)rc) {
		ssize_t w;
		HC_TLS_RETRY(w, gnutls_record_send(s, req + sent, n - sent), fd, deadline);
		if (w <= 0)
			return -1;
		rc = (int)w;
	}
	char line[HC_STATUS_MAX];
	size_t got = 0;
	while (got < sizeof(line) - 1 && !memchr(line, '\n', got)) {
		ssize_t r;
		HC_TLS_RETRY(r, gnutls_record_recv(s, line + got, sizeof(line) - 1 - got), fd, deadline);
		if (r < 0)
			fprintf(stderr, "credwatch-healthcheck: TLS: %s\n", gnutls_strerror((int)r));
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	line[got] = '\0';
	return hc_status(line, got);
}

/* The same exchange as hc_exchange, over TLS (CREDWATCH_TLS_CERT set). Returns the HTTP status or -1. */
static int hc_tls_exchange(int fd, const char *path, long deadline)
{
	char req[HC_REQUEST_MAX];
	int n = hc_request(req, sizeof(req), path);
	const char *cert = getenv("CREDWATCH_HEALTHCHECK_CERT"), *key = getenv("CREDWATCH_HEALTHCHECK_KEY");
	int flags = fcntl(fd, F_GETFL, 0);
	if (n < 0 || flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
		return -1;
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_session_t s = NULL;
	int status = -1;
	if (gnutls_certificate_allocate_credentials(&cred) < 0 || gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL) < 0 ||
	    gnutls_set_default_priority(s) < 0 || gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0)
		goto done;
	if (cert && *cert && key && *key) {
		int rc = gnutls_certificate_set_x509_key_file(cred, cert, key, GNUTLS_X509_FMT_PEM);
		if (rc < 0) {
			fprintf(stderr, "credwatch-healthcheck: CREDWATCH_HEALTHCHECK_CERT/_KEY: %s\n", gnutls_strerror(rc));
			goto done;
		}
	}
	gnutls_transport_set_int(s, fd); /* GNUTLS_NO_SIGNAL: a closed peer is an error, not SIGPIPE */
	gnutls_handshake_set_timeout(s, (unsigned)hc_remaining(deadline));
	status = hc_tls_talk(s, fd, req, (size_t)n, deadline);
	gnutls_bye(s, GNUTLS_SHUT_WR);
done:
	if (s)
		gnutls_deinit(s);
	if (cred)
		gnutls_certificate_free_credentials(cred);
	return status;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : HC_DEFAULT_PATH;
	const char *addr = getenv("CREDWATCH_HEALTHCHECK_ADDR");
	char host[HC_HOST_MAX], port[HC_PORT_MAX];

	if (argc > 2 || path[0] != '/' || strpbrk(path, " \r\n")) {
		fprintf(stderr, "usage: credwatch-healthcheck [/PATH]\n");
		return 2;
	}
	if (!addr || !*addr)
		addr = getenv("CREDWATCH_LISTEN");
	if (!addr || !*addr)
		addr = HC_DEFAULT_LISTEN;
	if (hc_split(addr, host, sizeof(host), port, sizeof(port)) < 0) {
		fprintf(stderr, "credwatch-healthcheck: cannot parse address '%s' (want host:port)\n", addr);
		return 2;
	}

	const char *tls_cert = getenv("CREDWATCH_TLS_CERT");
	int tls = tls_cert && *tls_cert;
	long deadline = hc_now_ms() + HC_TIMEOUT_MS;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "credwatch-healthcheck: %s:%s: %s\n", host, port, gai_strerror(rc));
		return 1;
	}
	int status = -1;
	for (const struct addrinfo *ai = res; ai && status < 0; ai = ai->ai_next) {
		int fd = hc_connect(ai, deadline);
		if (fd < 0)
			continue;
		status = tls ? hc_tls_exchange(fd, path, deadline) : hc_exchange(fd, path, deadline);
		close(fd);
	}
	freeaddrinfo(res);
	if (status == 200)
		return 0;
	if (status < 0)
		fprintf(stderr, "credwatch-healthcheck: no answer from %s://%s:%s%s\n", tls ? "https" : "http", host, port,
			path);
	else
		fprintf(stderr, "credwatch-healthcheck: %s:%s%s answered %d\n", host, port, path, status);
	return 1;
}
