/* The socket system calls libuv 1.44 cannot make for us, in one place.
 *
 * libuv 1.44 has no SO_REUSEPORT flag, cannot bind or connect a Linux
 * abstract name (uv_pipe_bind/connect take a C string), truncates a Unix
 * path that does not fit sun_path, and gives a listening stream no way to
 * stop calling accept() for a while. So cnet makes listening sockets and
 * Unix client sockets itself, with plain POSIX calls, and hands the
 * descriptors to libuv (uv_poll_t for listeners, uv_*_open for streams).
 * Every function returns a descriptor (>= 0) or a negative libuv code, and
 * closes what it opened when it fails. */
#define _GNU_SOURCE /* accept4 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int close_fail(int fd, int err) {
  close(fd);
  return err;
}

static int new_socket(int domain) {
  int fd = socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  return fd >= 0 ? fd : CNET__ERR(errno);
}

static int set_flag(int fd, int level, int name) {
  int on = 1;

  return setsockopt(fd, level, name, &on, sizeof(on)) == 0 ? 0
                                                           : CNET__ERR(errno);
}

/* The listen option reuse_port: set SO_REUSEPORT before bind(). Every
 * socket bound to the address must set it (and belong to the same user);
 * the kernel then spreads incoming connections among them. Linux >= 3.9. */
int cnet__set_reuse_port(int fd) {
#ifdef SO_REUSEPORT
  return set_flag(fd, SOL_SOCKET, SO_REUSEPORT);
#else
  (void)fd;
  return UV_ENOTSUP;
#endif
}

static int backlog_or_default(int backlog) {
  return backlog > 0 ? backlog : CNET__DEFAULT_BACKLOG;
}

static int listen_or_fail(int fd, int backlog) {
  if (listen(fd, backlog_or_default(backlog)) != 0)
    return close_fail(fd, CNET__ERR(errno));
  return fd;
}

/* As uv_tcp_bind + uv_listen do it: SO_REUSEADDR always (so a restarted
 * server can bind past TIME_WAIT), IPV6_V6ONLY only when asked (else the
 * system default, dual-stack on Linux). */
int cnet__listen_tcp(const cnet__sockaddr_t *sa, bool ipv6_only,
                     bool reuse_port, int backlog) {
  socklen_t len = sa->sa.sa_family == AF_INET6 ? sizeof(sa->in6)
                                               : sizeof(sa->in4);
  int fd = new_socket(sa->sa.sa_family);
  int err;

  if (fd < 0)
    return fd;
  err = set_flag(fd, SOL_SOCKET, SO_REUSEADDR);
  if (err == 0 && ipv6_only && sa->sa.sa_family == AF_INET6)
    err = set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY);
  if (err == 0 && reuse_port)
    err = cnet__set_reuse_port(fd);
  if (err == 0 && bind(fd, &sa->sa, len) != 0)
    err = CNET__ERR(errno);
  return err != 0 ? close_fail(fd, err) : listen_or_fail(fd, backlog);
}

/* A sockaddr_un for path (len bytes; abstract when path[0] is NUL). The
 * caller has checked the length with cnet__check_pipe_path. */
static socklen_t unix_addr(struct sockaddr_un *un, const char *path,
                           size_t len) {
  memset(un, 0, sizeof(*un));
  un->sun_family = AF_UNIX;
  memcpy(un->sun_path, path, len);
  /* A file name is passed with its NUL; an abstract name is exactly its
   * bytes (the kernel counts trailing NULs as part of the name). */
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                     (path[0] != '\0'));
}

/* uv_pipe_chmod's rule: add the asked-for bits for user, group and other
 * to the file's mode. */
static int chmod_all(const char *path, bool readable, bool writable) {
  mode_t want = (readable ? S_IRUSR | S_IRGRP | S_IROTH : 0) |
                (writable ? S_IWUSR | S_IWGRP | S_IWOTH : 0);
  struct stat st;

  if (want == 0)
    return 0;
  if (stat(path, &st) != 0)
    return CNET__ERR(errno);
  if ((st.st_mode & want) == want)
    return 0;
  return chmod(path, (st.st_mode | want) & 07777) == 0 ? 0 : CNET__ERR(errno);
}

int cnet__listen_unix(const char *path, size_t len, bool readable_all,
                      bool writable_all, int backlog) {
  struct sockaddr_un un;
  socklen_t sl = unix_addr(&un, path, len);
  int fd = new_socket(AF_UNIX);
  int err = 0;

  if (fd < 0)
    return fd;
  if (bind(fd, (struct sockaddr *)&un, sl) != 0)
    return close_fail(fd, CNET__ERR(errno)); /* nothing of ours to unlink */
  if (path[0] != '\0')
    err = chmod_all(un.sun_path, readable_all, writable_all);
  if (err == 0 && listen(fd, backlog_or_default(backlog)))
    err = CNET__ERR(errno);
  if (err != 0) {
    if (path[0] != '\0')
      unlink(un.sun_path); /* we made the file a moment ago */
    return close_fail(fd, err);
  }
  return fd;
}

/* listen({fd}): a stream socket of any family we know, made non-blocking
 * and close-on-exec, then listen() (which binds an unbound TCP socket to a
 * random port). *is_unix tells the family. EINVAL for anything else, as
 * Node reports a file or a datagram socket. */
int cnet__listen_adopt(int fd, int backlog, bool *is_unix) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int type = 0;
  socklen_t tlen = sizeof(type);
  int flags;

  if (fcntl(fd, F_GETFD) < 0)
    return CNET__ERR(errno);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 ||
      type != SOCK_STREAM || getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
    return UV_EINVAL;
  if (ss.ss_family != AF_UNIX && ss.ss_family != AF_INET &&
      ss.ss_family != AF_INET6)
    return UV_EINVAL;
  *is_unix = ss.ss_family == AF_UNIX;
  flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
    return CNET__ERR(errno);
  if (listen(fd, backlog_or_default(backlog)) != 0)
    return CNET__ERR(errno);
  return fd;
}

/* A second descriptor for the same socket, close-on-exec. */
int cnet__dup(int fd) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);

  return copy >= 0 ? copy : CNET__ERR(errno);
}

/* connect() for a Unix client, as uv_pipe_connect does it but with an
 * explicit length. A Unix stream connect completes (or fails) at once; a
 * full backlog is EAGAIN. Returns the connected descriptor, or the error
 * with *fd_out still set to the descriptor when there is one (the caller
 * gives it to its handle so that closing works the same either way). */
int cnet__connect_unix(const char *path, size_t len, int *fd_out) {
  struct sockaddr_un un;
  socklen_t sl = unix_addr(&un, path, len);
  int fd = new_socket(AF_UNIX);
  int r;

  *fd_out = fd;
  if (fd < 0)
    return fd;
  do
    r = connect(fd, (struct sockaddr *)&un, sl);
  while (r != 0 && errno == EINTR);
  return r == 0 ? fd : CNET__ERR(errno);
}

/* accept4() of one pending connection: the descriptor, UV_EAGAIN when none
 * is left, or the error. */
int cnet__accept(int listen_fd) {
  int fd;

  do
    fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd >= 0)
    return fd;
  return errno == EWOULDBLOCK ? UV_EAGAIN : CNET__ERR(errno);
}
