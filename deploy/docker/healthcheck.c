/*
 * credwatch-healthcheck: the container HEALTHCHECK probe.
 *
 * The runtime image carries no curl, wget, busybox or shell utilities worth attacking, so Docker's HEALTHCHECK runs
 * this one-purpose program instead: it sends `GET PATH HTTP/1.0` to the address credwatch listens on and exits 0 when
 * the answer's status is 200, 1 otherwise (2 on bad usage). It reads the same CREDWATCH_LISTEN the service reads, so
 * changing the port never silently breaks the probe; a wildcard listen address (0.0.0.0, ::, empty) is probed on
 * loopback. CREDWATCH_HEALTHCHECK_ADDR overrides the address. Every step is bounded by one deadline.
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

/* Sends the request and reads the status line. Returns the HTTP status or -1. */
static int hc_exchange(int fd, const char *path, long deadline)
{
	char req[HC_REQUEST_MAX];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\nUser-Agent: credwatch-healthcheck\r\n"
					   "Connection: close\r\n\r\n", path);
	if (n < 0 || (size_t)n >= sizeof(req))
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
	/* "HTTP/1.x NNN ..." */
	if (strncmp(line, "HTTP/1.", 7) != 0 || got < 12 || line[8] != ' ')
		return -1;
	char *end = NULL;
	long status = strtol(line + 9, &end, 10);
	if (end != line + 12)
		return -1;
	return (int)status;
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
		status = hc_exchange(fd, path, deadline);
		close(fd);
	}
	freeaddrinfo(res);
	if (status == 200)
		return 0;
	if (status < 0)
		fprintf(stderr, "credwatch-healthcheck: no answer from %s:%s%s\n", host, port, path);
	else
		fprintf(stderr, "credwatch-healthcheck: %s:%s%s answered %d\n", host, port, path, status);
	return 1;
}
