/* epoll-echo: the practical limit for one core -- the echo server an expert
 * writes by hand on Linux sockets and epoll, single-threaded, no library.
 *
 *   epoll-echo [PORT|PATH]
 *
 * A number is a TCP port on 0.0.0.0 (0: any free one), anything else a Unix
 * socket path (unlinked first); 8124 by default. Prints "listening on PORT"
 * (or "listening on PATH") on stdout once listening. Backlog 511 and
 * SO_REUSEADDR, as Node's. Accepted TCP sockets keep the kernel's default
 * (Nagle on, no TCP_NODELAY), as Node's net, cnet and every server in bench/
 * do: with TCP_NODELAY on one side only, bulk's figures compare the setting,
 * not the servers (2.4x apart here). The soft RLIMIT_NOFILE is raised to the
 * hard limit at start. SIGTERM and SIGINT end it at once (the default
 * action); SIGPIPE is ignored (a write to a reset peer fails with EPIPE).
 *
 * Level-triggered epoll, on purpose: each ready connection costs exactly one
 * read() and one write() per turn of the loop, with no epoll_ctl() in the
 * common case. Edge-triggered would force a read until EAGAIN (one more
 * system call per event, or a reliance on short reads) and gives a busy
 * connection no fairness bound; level-triggered reads at most 64 KiB per
 * connection per turn and lets epoll report what is left next time.
 *
 * All reads go to one static 64 KiB buffer and are written straight back.
 * When the kernel takes only part of a write, the unwritten tail is copied
 * into a malloc'd buffer of that connection, the connection stops reading
 * (interest EPOLLOUT only) and resumes (EPOLLIN) once the tail is flushed:
 * real backpressure, at most 64 KiB buffered per connection. The only other
 * per-connection state is a 16-byte slot in an fd-indexed array that grows
 * by doubling. An idle connection owns no heap memory.
 *
 * End of stream (read returns 0): since reading stops while anything is
 * pending, the tail has been flushed by then, so the connection is simply
 * closed. A read or write error (ECONNRESET, EPIPE, ...) closes it too.
 *
 * accept4() runs in a loop until EAGAIN. When it fails with EMFILE, ENFILE,
 * ENOBUFS or ENOMEM the listening socket is taken out of epoll for 100 ms
 * (the epoll_wait timeout) instead of spinning at 100% CPU on a backlog it
 * cannot drain. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BACKLOG 511
#define MAX_EVENTS 1024
#define ACCEPT_PAUSE_MS 100

struct conn {
  char *pending; /* the unwritten tail of the last read, or NULL */
  uint32_t off;  /* how much of it has been written since */
  uint32_t len;
};

static char buf[64 * 1024];
static struct conn *conns; /* indexed by descriptor */
static size_t nconns;
static int epfd, lfd;
static int is_tcp;

static void die(const char *what) {
  fprintf(stderr, "epoll-echo: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int64_t now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void raise_nofile(void) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void set_interest(int fd, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.fd = fd};

  if (epoll_ctl(epfd, op, fd, &ev) != 0)
    die("epoll_ctl");
}

/* Make room for descriptor fd in conns[]. Returns -1 if out of memory. */
static int reserve(int fd) {
  size_t n = nconns != 0 ? nconns : 1024;
  struct conn *c;

  if ((size_t)fd < nconns)
    return 0;
  while (n <= (size_t)fd)
    n *= 2;
  c = realloc(conns, n * sizeof(*conns));
  if (c == NULL)
    return -1;
  memset(c + nconns, 0, (n - nconns) * sizeof(*conns));
  conns = c;
  nconns = n;
  return 0;
}

static void close_conn(int fd) {
  free(conns[fd].pending);
  conns[fd] = (struct conn){0};
  close(fd); /* also removes it from the epoll set */
}

/* Returns 0 to go on accepting, -1 when the backlog is empty or accept must
 * pause (then *pause is set). */
static int accept_one(int *pause) {
  int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

  if (fd < 0) {
    switch (errno) {
    case EAGAIN:
      return -1;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      *pause = 1;
      return -1;
    default: /* ECONNABORTED, EINTR, EPROTO, ...: that one is gone */
      return 0;
    }
  }
  if (reserve(fd) != 0) {
    close(fd);
    *pause = 1;
    return -1;
  }
  set_interest(fd, EPOLLIN, EPOLL_CTL_ADD);
  return 0;
}

static void on_readable(int fd) {
  ssize_t n = read(fd, buf, sizeof(buf)), w;
  struct conn *c;

  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    close_conn(fd); /* end of stream or error; nothing is pending */
    return;
  }
  w = write(fd, buf, (size_t)n);
  if (w == n)
    return;
  if (w < 0) {
    if (errno != EAGAIN && errno != EINTR) {
      close_conn(fd);
      return;
    }
    w = 0;
  }
  c = &conns[fd];
  c->pending = malloc((size_t)(n - w));
  if (c->pending == NULL) {
    close_conn(fd);
    return;
  }
  memcpy(c->pending, buf + w, (size_t)(n - w));
  c->off = 0;
  c->len = (uint32_t)(n - w);
  set_interest(fd, EPOLLOUT, EPOLL_CTL_MOD);
}

static void on_writable(int fd) {
  struct conn *c = &conns[fd];
  ssize_t w = write(fd, c->pending + c->off, c->len - c->off);

  if (w < 0) {
    if (errno != EAGAIN && errno != EINTR)
      close_conn(fd);
    return;
  }
  c->off += (uint32_t)w;
  if (c->off < c->len)
    return;
  free(c->pending);
  c->pending = NULL;
  c->off = c->len = 0;
  set_interest(fd, EPOLLIN, EPOLL_CTL_MOD);
}

static void listen_on(const char *where) {
  char *end;
  long port = strtol(where, &end, 10);

  is_tcp = *where != '\0' && *end == '\0' && port >= 0 && port < 65536;
  if (is_tcp) {
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_ANY)};
    socklen_t len = sizeof(sin);
    int one = 1;

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
      die("socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
      die("bind");
    if (listen(lfd, BACKLOG) != 0)
      die("listen");
    if (getsockname(lfd, (struct sockaddr *)&sin, &len) != 0)
      die("getsockname");
    printf("listening on %d\n", ntohs(sin.sin_port));
  } else {
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    if (strlen(where) >= sizeof(sun.sun_path)) {
      fprintf(stderr, "epoll-echo: path too long: %s\n", where);
      exit(64);
    }
    strcpy(sun.sun_path, where);
    unlink(where);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
      die("socket");
    if (bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
      die("bind");
    if (listen(lfd, BACKLOG) != 0)
      die("listen");
    printf("listening on %s\n", where);
  }
  fflush(stdout);
}

int main(int argc, char **argv) {
  static struct epoll_event events[MAX_EVENTS];
  const char *where = "8124";
  int64_t resume_at = 0; /* accept paused until then (0: not paused) */

  if (argc > 2 || (argc == 2 && (strcmp(argv[1], "-h") == 0 ||
                                 strcmp(argv[1], "--help") == 0))) {
    fprintf(stderr, "usage: epoll-echo [PORT|PATH]\n");
    return 64;
  }
  if (argc == 2)
    where = argv[1];
  raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0)
    die("epoll_create1");
  if (reserve(1023) != 0)
    die("malloc");
  listen_on(where);
  set_interest(lfd, EPOLLIN, EPOLL_CTL_ADD);

  for (;;) {
    int timeout = -1, n;

    if (resume_at != 0) {
      int64_t left = resume_at - now_ms();

      if (left <= 0) {
        resume_at = 0;
        set_interest(lfd, EPOLLIN, EPOLL_CTL_ADD);
      } else {
        timeout = (int)left;
      }
    }
    n = epoll_wait(epfd, events, MAX_EVENTS, timeout);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;

      if (fd == lfd) {
        int pause = 0;

        while (accept_one(&pause) == 0)
          ;
        if (pause && resume_at == 0) {
          epoll_ctl(epfd, EPOLL_CTL_DEL, lfd, NULL);
          resume_at = now_ms() + ACCEPT_PAUSE_MS;
        }
      } else if (conns[fd].pending != NULL) {
        on_writable(fd); /* EPOLLOUT, or EPOLLERR/EPOLLHUP: write says */
      } else {
        on_readable(fd); /* EPOLLIN, or EPOLLERR/EPOLLHUP: read says */
      }
    }
  }
}
