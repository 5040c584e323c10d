/* loadgen: the load generator of cnet's benchmarks -- throughput, latency
 * and the server's CPU time per operation, against any echo server.
 *
 *   loadgen [options] PORT|HOST:PORT|PATH
 *
 * Written directly on non-blocking sockets and one epoll instance, so that
 * it shares no code with what it measures (cnet, libuv). A number is a TCP
 * port on 127.0.0.1, HOST:PORT an IPv4 address and port, anything else a
 * Unix socket path.
 *
 * Options:
 *   --mode MODE      ping-pong (default), pipeline, bulk, churn or idle
 *   -c N             connections (default 50; idle: 10000)
 *   -m BYTES         message size (default 64; bulk: the write chunk,
 *                    default 65536, at most 262144)
 *   -d DEPTH         pipeline: messages in flight per connection (default 16)
 *   -t SECONDS       measured duration (default 5; fractions allowed)
 *   -w SECONDS       warm-up before it (default 1)
 *   -n OPS           measure exactly OPS operations instead of a duration;
 *                    there is then no time limit but --timeout
 *   -W OPS           with -n: warm up for OPS operations first (default 0);
 *                    idle: the number of warm-up connections (default 64)
 *   --timeout SECS   fail (exit 1) if the whole run takes longer (default:
 *                    600 with -n and in idle mode, else -w + -t + 60)
 *   --server-pid PID read the server's CPU time (utime + stime of
 *                    /proc/PID/stat: all its threads) and resident memory
 *                    (Rss of /proc/PID/smaps_rollup, VmRSS of
 *                    /proc/PID/status if there is none) at the start and the
 *                    end of the measured window
 *   --sources N      TCP: bind the connections round-robin to 127.0.0.1 ..
 *                    127.0.0.N (IP_BIND_ADDRESS_NO_PORT), for more than the
 *                    ~28k connections one source address can open to one port
 *   --concurrent N   at most N connections in their handshake at once
 *                    (default 256), so the server's backlog never overflows
 *   --idle-exit      idle: print the result and exit instead of holding
 *   -h               this text
 *
 * Modes (an operation, "op", is what the per-op figures divide by):
 *   ping-pong  every connection has one message of -m bytes in flight: write
 *              it, read until the whole echo is back (in as many pieces as it
 *              comes), verify, write the next. op = one round trip.
 *   pipeline   every connection keeps -d messages in flight: each time a
 *              whole message's echo is back, one more is written (all that a
 *              read completed go out in one write). op = one message echoed.
 *   bulk       every connection streams both ways: chunks of -m bytes are
 *              written while less than 256 KiB is unacknowledged (sent and
 *              not yet echoed), everything that comes back is read and
 *              verified. op = 1 MB (10^6 bytes) echoed; us_per_op is the
 *              server's CPU time per MB and ops the whole MBs.
 *   churn      -c connections are kept in a cycle: connect, write one message
 *              of -m bytes, read its echo, verify, close (a plain close: a
 *              FIN, not a reset), start the next at once. op = one connection,
 *              latency = from connect() to the whole echo. A cycle counts
 *              against --concurrent until its echo is back (only then do we
 *              know the server accepted it), so at most --concurrent cycles
 *              run at once. Over TCP each cycle leaves a TIME_WAIT socket on
 *              our side, and with one source address connect()'s search for
 *              a free local port soon dominates the generator (on the 2-core
 *              test machine: 14k cycles/s with 70 ms stalls, against 27k/s
 *              with --sources 4): use --sources for churn.
 *   idle       opens -W (64) warm-up connections, echoes one byte on each,
 *              closes them, waits 0.5 s and reads the server's RSS
 *              (rss_before, as bench/idle-memory.sh does); opens -c
 *              connections (at most --concurrent in their handshake), each
 *              writing one byte and waiting for its echo, so the server has
 *              accepted and set up every one; waits 1 s, reads the RSS again
 *              (rss_after); prints the result line, then "ready N". It then
 *              holds them, idle, until stdin reaches its end (if stdin is a
 *              pipe or a terminal) or SIGTERM / SIGINT arrives, or exits at
 *              once with --idle-exit. op = one connection set up; seconds and
 *              server_cpu_us cover setting up the N; latency = connect() to
 *              echo; bytes_per_conn = (rss_after - rss_before) * 1024 / N.
 *              Anything the server sends or does to a held connection is an
 *              error.
 *
 * Every connection but churn's first echoes one byte before the traffic
 * starts, so all are accepted and set up when the warm-up begins. The bytes
 * written are a 1 MiB pseudo-random pattern read at an offset that depends on
 * the connection (and churn's cycle), continuing along the stream, so each
 * message differs from the last and from every other connection's: every
 * byte that comes back is compared with what was sent there. A wrong byte, a
 * byte too many, an end of stream, a reset or any other error is a message
 * on stderr naming the connection and the stream offset, and exit 1.
 *
 * When the measured window is over (all modes but idle), every connection
 * writes its end (shutdown) and is read, still verified, until the server
 * ends it too (10 s at most), rather than reset with echoes unread: servers
 * see a well-behaved client, not ECONNRESET or EPIPE (and SIGPIPE, if they
 * do not ignore it) on every connection. Messages not yet written then never
 * are. Idle connections, with nothing unread, are simply closed.
 *
 * Output: one line on stdout (plus "ready N" in idle mode), key=value pairs in
 * this order, "-" where a figure does not apply or was not measured:
 *   mode= transport=tcp|unix conns= size= depth= ops= seconds=
 *   ops_per_sec= mb_per_sec= server_cpu_us= us_per_op= p50_us= p99_us=
 *   bytes= rss_before_kb= rss_after_kb= bytes_per_conn=
 * bytes = echoed bytes verified in the measured window; mb_per_sec =
 * bytes / 10^6 / seconds; server_cpu_us = the server's user + system CPU time
 * in the window (clock-tick resolution: 10 ms at 100 Hz), us_per_op =
 * server_cpu_us / ops; p50_us and p99_us from a log-linear histogram (under
 * 1% error) of the ops' latencies; bytes_per_conn is 0 but in idle mode.
 * Diagnostics go to stderr. Exit 0 on success, 1 on a failed run, 2 when the
 * hard RLIMIT_NOFILE is too low for -c (the soft one is raised as needed),
 * 64 on a usage error.
 *
 * Efficiency matters, since the generator is often the bottleneck: no
 * allocation after setup, writes straight from the pattern, one 256 KiB read
 * buffer, one write per batch of messages, level-triggered epoll with
 * EPOLLOUT asked for only while a write is incomplete (so no epoll_ctl() in
 * the common case), batches of 1024 events, and one clock_gettime() (vDSO)
 * per read. TCP connections get TCP_NODELAY, except churn's when the message
 * fits in 16 KiB: a connection that writes once is never delayed by Nagle,
 * and that saves a system call per cycle. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ settings --- */

enum mode { PING_PONG, PIPELINE, BULK, CHURN, IDLE };
static const char *const mode_names[] = {"ping-pong", "pipeline", "bulk",
                                         "churn", "idle"};

static enum mode mode = PING_PONG;
static int nconns = -1;        /* -c; -1: the mode's default */
static long size = -1;         /* -m; -1: the mode's default */
static int depth = 16;         /* -d */
static double run_secs = 5;    /* -t */
static double warm_secs = 1;   /* -w */
static uint64_t count_ops;     /* -n; 0: by time */
static long warm_count = -1;   /* -W; -1: the mode's default */
static double timeout_secs = -1; /* -1: the mode's default */
static pid_t server_pid;       /* 0: none */
static int sources = 1;
static int concurrent = 256;
static bool idle_exit;

#define BULK_WINDOW (256 * 1024) /* bulk: most unacknowledged per conn */
#define MB 1000000.0

/* ------------------------------------------------------------- pattern --- */

/* What connection c writes at stream offset o is pat[(base_c + o) % PAT_LEN];
 * pat's first PAT_EXT bytes are repeated after PAT_LEN, so that PAT_EXT bytes
 * from any offset are contiguous: writes go straight from it and reads are
 * compared with it by memcmp. */
#define PAT_LEN (1u << 20)
#define PAT_EXT (256u * 1024)
static unsigned char pat[PAT_LEN + PAT_EXT];
static unsigned char rbuf[PAT_EXT];

static uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static void fill_pattern(void) {
  uint64_t s = 0x5eed;

  for (size_t i = 0; i < PAT_LEN; i += 8) {
    uint64_t v = splitmix(s++);

    memcpy(pat + i, &v, 8);
  }
  memcpy(pat + PAT_LEN, pat, PAT_EXT);
}

/* ---------------------------------------------------------- connections --- */

enum state {
  C_FREE,  /* not open */
  C_SETUP, /* connecting, its one byte written or to be written */
  C_READY, /* set up, waiting for the others */
  C_RUN,   /* traffic (churn: the whole cycle) */
  C_HELD,  /* idle: set up and held */
  C_DRAIN  /* the run is over: written its end, reading until the server's */
};

struct conn {
  int fd;
  uint8_t state;
  bool out;        /* EPOLLOUT is in its interest set */
  uint32_t gen;    /* how many times this slot was opened (churn's cycle) */
  uint32_t base;   /* its offset in the pattern */
  uint64_t queued; /* stream bytes to be written so far */
  uint64_t sent;   /* written */
  uint64_t recvd;  /* echoed and verified */
  uint64_t t0;     /* when connect() was called (ns) */
  uint64_t *issue; /* pipeline / ping-pong: when message k was queued, at
                      issue[k % depth] */
};

static struct conn *conns;
static uint64_t *issue_times; /* depth per connection */
static int nslots;
static struct sockaddr_storage target;
static socklen_t target_len;
static bool is_tcp;
static int epfd;
static int src_next;
static size_t max_write = PAT_EXT;
static bool nodelay = true;

/* Slots waiting to be opened (a FIFO; each slot at most once). */
static int *startq;
static int sq_head, sq_len;
static int in_flight; /* opened, handshake (churn: cycle) not finished */
static bool start_blocked; /* a Unix listener said EAGAIN: retry in 1 ms */

#define TAG_SIGNAL UINT32_MAX
#define TAG_STDIN (UINT32_MAX - 1)

/* -------------------------------------------------------------- phases --- */

enum phase { P_SETUP, P_WARM, P_MEASURE, P_SETTLE, P_HOLD, P_DONE };
static enum phase phase = P_SETUP;
static int setup_target, setup_done;
static uint64_t t_start, deadline, phase_end; /* ns */
static uint64_t t_begin, t_end;               /* the measured window */
static uint64_t warm_done;                    /* ops (bulk: bytes) */
static uint64_t ops, bytes;                   /* in the window */
static uint64_t total_verified;               /* bytes, in all phases */
static int64_t cpu0 = -1, cpu1 = -1;          /* µs */
static long rss0 = -1, rss1 = -1;             /* KiB */
static bool stop_holding;
static int draining; /* connections in C_DRAIN */
static struct epoll_event events[1024];

/* ----------------------------------------------------------- histogram --- */

/* Log-linear: exact below 256 ns, then 128 buckets per power of two (under
 * 0.8% error), up to 2^41 ns. */
#define H_SUB 128
#define H_MAXSHIFT 33
#define H_BUCKETS (2 * H_SUB + H_MAXSHIFT * H_SUB)
static uint64_t hist[H_BUCKETS];
static uint64_t hist_n;

static void hist_add(uint64_t v) {
  int idx;

  if (v < 2 * H_SUB) {
    idx = (int)v;
  } else {
    int shift = 63 - __builtin_clzll(v) - 7;

    if (shift > H_MAXSHIFT) {
      shift = H_MAXSHIFT;
      v = ((uint64_t)2 * H_SUB << shift) - 1;
    }
    idx = 2 * H_SUB + (shift - 1) * H_SUB + (int)((v >> shift) - H_SUB);
  }
  hist[idx]++;
  hist_n++;
}

static double hist_value(int idx) {
  int shift;
  uint64_t m;

  if (idx < 2 * H_SUB)
    return idx;
  shift = (idx - 2 * H_SUB) / H_SUB + 1;
  m = (uint64_t)((idx - 2 * H_SUB) % H_SUB + H_SUB);
  return ((double)(m << shift) + (double)((m + 1) << shift)) / 2;
}

/* The p-quantile in ns, or -1 with no samples. */
static double hist_quantile(double p) {
  double r = p * (double)hist_n;
  uint64_t rank = (uint64_t)r, seen = 0;

  if (hist_n == 0)
    return -1;
  if ((double)rank < r || rank < 1)
    rank++;
  for (int i = 0; i < H_BUCKETS; i++) {
    seen += hist[i];
    if (seen >= rank)
      return hist_value(i);
  }
  return hist_value(H_BUCKETS - 1);
}

/* ------------------------------------------------------------- helpers --- */

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *to, int status) {
  fprintf(to,
          "usage: loadgen [--mode ping-pong|pipeline|bulk|churn|idle] [-c N] "
          "[-m BYTES]\n"
          "               [-d DEPTH] [-t SECONDS] [-w SECONDS] [-n OPS [-W "
          "OPS]]\n"
          "               [--timeout SECONDS] [--server-pid PID] [--sources "
          "N]\n"
          "               [--concurrent N] [--idle-exit] "
          "PORT|HOST:PORT|PATH\n"
          "Prints one line: mode= transport= conns= size= depth= ops= "
          "seconds= ops_per_sec=\n"
          "mb_per_sec= server_cpu_us= us_per_op= p50_us= p99_us= bytes= "
          "rss_before_kb=\n"
          "rss_after_kb= bytes_per_conn= (the header of bench/loadgen.c "
          "says more).\n");
  exit(status);
}

static void bad_arg(const char *opt, const char *arg) {
  fprintf(stderr, "loadgen: bad value for %s: '%s'\n", opt, arg);
  exit(64);
}

static long parse_long(const char *opt, const char *arg, long min, long max) {
  char *end;
  long v;

  errno = 0;
  v = strtol(arg, &end, 10);
  if (errno != 0 || end == arg || *end != '\0' || v < min || v > max)
    bad_arg(opt, arg);
  return v;
}

static double parse_secs(const char *opt, const char *arg, double min) {
  char *end;
  double v = strtod(arg, &end);

  if (end == arg || *end != '\0' || !(v >= min) || v > 1e7)
    bad_arg(opt, arg);
  return v;
}

static void parse_target(const char *arg) {
  char host[64] = "127.0.0.1";
  const char *colon = strrchr(arg, ':');
  const char *port = colon != NULL ? colon + 1 : arg;
  char *end;
  long p = strtol(port, &end, 10);

  memset(&target, 0, sizeof(target));
  if (*port != '\0' && *end == '\0' && p > 0 && p < 65536 &&
      (colon == NULL || (size_t)(colon - arg) < sizeof(host))) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&target;

    if (colon != NULL) {
      memcpy(host, arg, (size_t)(colon - arg));
      host[colon - arg] = '\0';
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)p);
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
      fprintf(stderr, "loadgen: not an IPv4 address: %s\n", host);
      exit(64);
    }
    target_len = sizeof(*sin);
    is_tcp = true;
  } else {
    struct sockaddr_un *sun = (struct sockaddr_un *)&target;

    if (strlen(arg) >= sizeof(sun->sun_path)) {
      fprintf(stderr, "loadgen: path too long: %s\n", arg);
      exit(64);
    }
    sun->sun_family = AF_UNIX;
    strcpy(sun->sun_path, arg);
    target_len = sizeof(*sun);
  }
}

static void raise_nofile(int k) {
  struct rlimit rl;
  rlim_t need = (rlim_t)k + 32;

  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    die("getrlimit");
  if (rl.rlim_cur >= need)
    return;
  if (rl.rlim_max < need) {
    fprintf(stderr,
            "loadgen: %d connections need %lu descriptors, but the hard "
            "limit (ulimit -Hn) is %lu; raise it (as root: prlimit "
            "--nofile=%lu, or ulimit -Hn %lu) or lower -c\n",
            k, (unsigned long)need, (unsigned long)rl.rlim_max,
            (unsigned long)need, (unsigned long)need);
    exit(2);
  }
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
    die("setrlimit");
}

/* ------------------------------------------------------- server figures --- */

/* utime + stime of the whole process (all its threads, live or gone), µs. */
static int64_t server_cpu_us(void) {
  char path[64], buf[1024], *p;
  unsigned long long ut, st;
  ssize_t n;
  int fd;

  if (server_pid == 0)
    return -1;
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)server_pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    die(path);
  n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    die(path);
  buf[n] = '\0';
  /* Fields 14 and 15; the name (field 2) may hold spaces and ')'. */
  p = strrchr(buf, ')');
  if (p == NULL || sscanf(p + 2,
                          "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                          "%llu %llu",
                          &ut, &st) != 2) {
    fprintf(stderr, "loadgen: cannot parse %s\n", path);
    exit(1);
  }
  return (int64_t)((ut + st) * 1000000ull / (unsigned long long)sysconf(
                                                _SC_CLK_TCK));
}

/* Resident KiB: smaps_rollup's Rss (exact), else status's VmRSS (which
 * kernels keep in per-CPU counters, off by up to a few hundred KiB). */
static long server_rss_kb(void) {
  static const char *const files[] = {"smaps_rollup", "status"};
  static const char *const keys[] = {"Rss:", "VmRSS:"};
  char path[64], line[256];

  if (server_pid == 0)
    return -1;
  for (int i = 0; i < 2; i++) {
    FILE *f;
    long kb = -1;

    snprintf(path, sizeof(path), "/proc/%d/%s", (int)server_pid, files[i]);
    f = fopen(path, "re");
    if (f == NULL)
      continue;
    while (fgets(line, sizeof(line), f) != NULL)
      if (strncmp(line, keys[i], strlen(keys[i])) == 0) {
        kb = strtol(line + strlen(keys[i]), NULL, 10);
        break;
      }
    fclose(f);
    if (kb >= 0)
      return kb;
  }
  fprintf(stderr, "loadgen: cannot read the RSS of process %d\n",
          (int)server_pid);
  exit(1);
}

/* --------------------------------------------------------------- errors --- */

static void fail_conn(const struct conn *c, const char *what, int err) {
  int i = (int)(c - conns);

  fprintf(stderr, "loadgen: connection %d", i);
  if (mode == CHURN)
    fprintf(stderr, " (cycle %u)", c->gen);
  fprintf(stderr, ": %s: %s, at stream offset %llu (%llu bytes written, "
                  "%llu echoed and verified)\n",
          what, err > 0 ? strerror(err) : "closed by the server",
          (unsigned long long)c->recvd, (unsigned long long)c->sent,
          (unsigned long long)c->recvd);
  exit(1);
}

static const unsigned char *stream_at(const struct conn *c, uint64_t off) {
  return pat + ((c->base + off) & (PAT_LEN - 1));
}

/* Compare n echoed bytes with what was written at c->recvd. */
static void verify(struct conn *c, const unsigned char *got, size_t n) {
  const unsigned char *want = stream_at(c, c->recvd);
  size_t j = 0;
  uint64_t off;

  if (c->recvd + n > c->sent) {
    if (c->recvd < c->sent && memcmp(got, want, c->sent - c->recvd) != 0)
      goto mismatch;
    fprintf(stderr,
            "loadgen: connection %d: the server echoed %llu bytes more than "
            "were written (%llu written, %llu echoed)\n",
            (int)(c - conns), (unsigned long long)(c->recvd + n - c->sent),
            (unsigned long long)c->sent, (unsigned long long)(c->recvd + n));
    exit(1);
  }
  if (memcmp(got, want, n) == 0) {
    total_verified += n;
    return;
  }
mismatch:
  while (got[j] == want[j])
    j++;
  off = c->recvd + j;
  fprintf(stderr, "loadgen: connection %d", (int)(c - conns));
  if (mode == CHURN)
    fprintf(stderr, " (cycle %u)", c->gen);
  fprintf(stderr, ": wrong byte at stream offset %llu", (unsigned long long)off);
  if (off == 0 && mode != CHURN)
    fprintf(stderr, " (the setup byte)");
  else if (mode == PING_PONG || mode == PIPELINE)
    fprintf(stderr, " (message %llu, byte %llu)",
            (unsigned long long)((off - 1) / (uint64_t)size),
            (unsigned long long)((off - 1) % (uint64_t)size));
  else if (mode == CHURN)
    fprintf(stderr, " (byte %llu of its message)", (unsigned long long)off);
  fprintf(stderr, ": got 0x%02x, expected 0x%02x\n", got[j], want[j]);
  exit(1);
}

/* ------------------------------------------------------------ writing --- */

static void set_out(struct conn *c, bool want) {
  struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                           .data.u64 = (uint64_t)(c - conns)};

  if (want == c->out)
    return;
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
    die("epoll_ctl");
  c->out = want;
}

/* Write what is queued. Returns true if some is left (the socket is full or
 * still connecting): EPOLLOUT is then needed. */
static bool flush(struct conn *c) {
  while (c->sent < c->queued) {
    size_t len = c->queued - c->sent;
    ssize_t w;

    if (len > max_write)
      len = max_write;
    w = write(c->fd, stream_at(c, c->sent), len);
    if (w < 0) {
      if (errno == EAGAIN)
        return true;
      if (errno == EINTR)
        continue;
      fail_conn(c, c->sent == 0 ? "connect" : "write", errno);
    }
    c->sent += (uint64_t)w;
    if ((size_t)w < len)
      return true; /* full: the next write would say EAGAIN */
  }
  return false;
}

/* ------------------------------------------------------------- opening --- */

static void queue_start(int i) {
  startq[(sq_head + sq_len) % nslots] = i;
  sq_len++;
}

/* Open slot i: socket, connect, and write what it writes first (its setup
 * byte, churn's message) at once -- on loopback the handshake is usually
 * over when connect() returns. Returns false if a Unix listener's backlog is
 * full (EAGAIN): try again later. */
static bool open_conn(int i) {
  struct conn *c = &conns[i];
  struct epoll_event ev;
  int fd = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);

  if (fd < 0)
    die("socket");
  if (is_tcp && nodelay) {
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  if (is_tcp && sources > 1) {
    struct sockaddr_in src = {.sin_family = AF_INET};
    int one = 1;

    src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)src_next);
    src_next = (src_next + 1) % sources;
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof(one)) != 0)
      die("setsockopt(IP_BIND_ADDRESS_NO_PORT)");
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0)
      die("bind");
  }
  c->fd = fd;
  c->gen++;
  c->base = (uint32_t)splitmix(((uint64_t)i << 32) | c->gen) & (PAT_LEN - 1);
  c->queued = mode == CHURN ? (uint64_t)size : 1;
  c->sent = c->recvd = 0;
  c->t0 = now_ns();
  c->state = mode == CHURN ? C_RUN : C_SETUP;
  if (connect(fd, (struct sockaddr *)&target, target_len) != 0 &&
      errno != EINPROGRESS) {
    if (errno == EAGAIN && !is_tcp) {
      close(fd);
      c->gen--;
      c->state = C_FREE;
      return false;
    }
    if (errno == EADDRNOTAVAIL)
      fprintf(stderr, "loadgen: out of local ports for this destination; "
                      "spread the connections with --sources N\n");
    fail_conn(c, "connect", errno);
  }
  c->out = flush(c);
  ev.events = EPOLLIN | (c->out ? EPOLLOUT : 0);
  ev.data.u64 = (uint64_t)i;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
    die("epoll_ctl");
  return true;
}

/* Open queued slots while fewer than --concurrent are in their handshake. */
static void pump(void) {
  start_blocked = false;
  while (sq_len > 0 && in_flight < concurrent) {
    if (!open_conn(startq[sq_head])) {
      start_blocked = true;
      return;
    }
    sq_head = (sq_head + 1) % nslots;
    sq_len--;
    in_flight++;
  }
}

static void close_conn(struct conn *c) {
  close(c->fd);
  c->fd = -1;
  c->state = C_FREE;
  c->out = false;
}

/* ------------------------------------------------------------ measuring --- */

/* The RSS is read first: walking the server's page tables takes a while. */
static void begin_measure(uint64_t now) {
  phase = P_MEASURE;
  if (server_pid != 0) {
    rss0 = server_rss_kb();
    cpu0 = server_cpu_us();
    now = now_ns();
  }
  t_begin = now;
  if (count_ops == 0)
    phase_end = now + (uint64_t)(run_secs * 1e9);
}

static void end_measure(uint64_t now) {
  phase = P_DONE;
  t_end = now;
  cpu1 = server_cpu_us();
  rss1 = server_rss_kb();
}

/* One operation (not bulk's) has completed, with latency lat. */
static void count_op(uint64_t lat, uint64_t now) {
  if (phase == P_WARM) {
    if (count_ops != 0 && ++warm_done >= (uint64_t)warm_count)
      begin_measure(now);
    return;
  }
  if (phase != P_MEASURE)
    return;
  ops++;
  bytes += (uint64_t)size;
  hist_add(lat);
  if (count_ops != 0 && ops == count_ops)
    end_measure(now);
}

/* Bulk: n more bytes have been echoed and verified. */
static void count_bytes(uint64_t n, uint64_t now) {
  if (phase == P_WARM) {
    warm_done += n;
    if (count_ops != 0 && warm_done >= (uint64_t)warm_count * (uint64_t)MB)
      begin_measure(now);
    return;
  }
  if (phase != P_MEASURE)
    return;
  if (count_ops != 0 && bytes + n >= count_ops * (uint64_t)MB) {
    bytes = count_ops * (uint64_t)MB;
    end_measure(now);
    return;
  }
  bytes += n;
}

/* ------------------------------------------------------------- traffic --- */

/* Ping-pong, pipeline: queue k more messages on c, sent at now. */
static void issue(struct conn *c, uint64_t k, uint64_t now) {
  uint64_t first = (c->queued - 1) / (uint64_t)size;

  for (uint64_t j = 0; j < k; j++)
    c->issue[(first + j) % (uint64_t)depth] = now;
  c->queued += k * (uint64_t)size;
  set_out(c, flush(c));
}

static void bulk_fill(struct conn *c) {
  uint64_t room = c->recvd + BULK_WINDOW - c->queued;

  if (room >= (uint64_t)size) {
    c->queued += room - room % (uint64_t)size;
    set_out(c, flush(c));
  }
}

/* The setup of all connections is over: start the traffic. */
static void start_traffic(uint64_t now) {
  if (count_ops != 0 ? warm_count == 0 : warm_secs == 0) {
    begin_measure(now);
  } else {
    phase = P_WARM;
    phase_end = now + (uint64_t)(warm_secs * 1e9);
  }
  for (int i = 0; i < nslots; i++) {
    struct conn *c = &conns[i];

    c->state = C_RUN;
    if (mode == BULK)
      bulk_fill(c);
    else
      issue(c, (uint64_t)depth, now);
  }
}

static void idle_setup_over(uint64_t now);

/* Connection i's setup byte is back. */
static void setup_over(int i, uint64_t now) {
  struct conn *c = &conns[i];

  in_flight--;
  setup_done++;
  if (mode == IDLE) {
    c->state = C_HELD;
    if (phase == P_MEASURE) {
      ops++;
      bytes++;
      hist_add(now - c->t0);
    }
  } else {
    c->state = C_READY;
  }
  pump();
  if (setup_done < setup_target)
    return;
  if (mode == IDLE)
    idle_setup_over(now);
  else
    start_traffic(now);
}

static void churn_over(int i, uint64_t now) {
  struct conn *c = &conns[i];

  close_conn(c);
  in_flight--;
  count_op(now - c->t0, now);
  if (phase == P_DONE)
    return;
  queue_start(i);
  pump();
}

/* c has n more bytes in rbuf, verified; c->recvd is past them. */
static void on_data(int i, size_t n, uint64_t now) {
  struct conn *c = &conns[i];

  switch (c->state) {
  case C_SETUP:
    setup_over(i, now);
    return;
  case C_RUN:
    break;
  default: /* C_READY, C_HELD: nothing was asked */
    fprintf(stderr, "loadgen: connection %d: %zu unexpected bytes while %s\n",
            i, n, c->state == C_HELD ? "held idle" : "waiting for the others");
    exit(1);
  }
  switch (mode) {
  case PING_PONG:
  case PIPELINE: {
    uint64_t before = (c->recvd - n - 1) / (uint64_t)size;
    uint64_t after = (c->recvd - 1) / (uint64_t)size;

    for (uint64_t k = before; k < after; k++) {
      count_op(now - c->issue[k % (uint64_t)depth], now);
      if (phase == P_DONE)
        return;
    }
    if (after > before)
      issue(c, after - before, now);
    return;
  }
  case BULK:
    count_bytes(n, now);
    if (phase != P_DONE)
      bulk_fill(c);
    return;
  case CHURN:
    if (c->recvd == (uint64_t)size)
      churn_over(i, now);
    return;
  case IDLE:
    return;
  }
}

static void on_readable(int i) {
  struct conn *c = &conns[i];
  ssize_t n = read(c->fd, rbuf, sizeof(rbuf));

  if (c->state == C_DRAIN) { /* what comes is verified; an end is no error */
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (n <= 0) {
      close_conn(c);
      draining--;
      return;
    }
    verify(c, rbuf, (size_t)n);
    c->recvd += (uint64_t)n;
    return;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR)
      return;
    fail_conn(c, c->sent == 0 ? "connect" : "read", errno);
  }
  if (n == 0)
    fail_conn(c, c->state == C_HELD ? "while held" : "end of stream", 0);
  if (c->state == C_HELD || c->state == C_READY)
    on_data(i, (size_t)n, 0); /* reports and exits */
  verify(c, rbuf, (size_t)n);
  c->recvd += (uint64_t)n;
  on_data(i, (size_t)n, now_ns());
}

static void on_event(int i, uint32_t events) {
  struct conn *c = &conns[i];

  if (c->state == C_FREE)
    return; /* closed earlier in this batch */
  if (c->out && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
    set_out(c, flush(c));
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
    on_readable(i);
}

/* ---------------------------------------------------------------- idle --- */

static void print_result(void);

static void idle_setup_over(uint64_t now) {
  if (phase == P_WARM) {
    for (int i = 0; i < setup_target; i++)
      close_conn(&conns[i]);
    fprintf(stderr, "loadgen: %d warm-up connections echoed and closed\n",
            setup_target);
    usleep(500000);
    setup_target = nconns;
    setup_done = 0;
    for (int i = 0; i < nconns; i++)
      queue_start(i);
    begin_measure(now_ns());
    pump();
    return;
  }
  t_end = now;
  cpu1 = server_cpu_us();
  fprintf(stderr, "loadgen: %d connections up in %.3f s\n", nconns,
          (double)(t_end - t_begin) / 1e9);
  phase = P_SETTLE;
  phase_end = now + 1000000000u;
}

static void watch_tag(int fd, uint32_t tag) {
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};

  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0 && errno != EPERM &&
      errno != EBADF)
    die("epoll_ctl");
}

static void on_tag(uint32_t tag) {
  char buf[256];

  if (tag == TAG_SIGNAL) {
    stop_holding = true;
    return;
  }
  ssize_t n = read(0, buf, sizeof(buf));

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
    stop_holding = true;
  }
}

/* --------------------------------------------------------------- output --- */

static void print_result(void) {
  double secs = (double)(t_end - t_begin) / 1e9;
  double nops = mode == BULK ? (double)bytes / MB : (double)ops;
  double p50 = hist_quantile(0.50), p99 = hist_quantile(0.99);
  char dep[16], cpu[32], per[32], s50[32], s99[32], rb[32], ra[32], bpc[32];

  if (mode == BULK || mode == IDLE)
    strcpy(dep, "-");
  else
    snprintf(dep, sizeof(dep), "%d", mode == PIPELINE ? depth : 1);
  strcpy(cpu, "-");
  strcpy(per, "-");
  if (cpu0 >= 0 && cpu1 >= 0) {
    snprintf(cpu, sizeof(cpu), "%lld", (long long)(cpu1 - cpu0));
    if (nops > 0)
      snprintf(per, sizeof(per), "%.3f", (double)(cpu1 - cpu0) / nops);
  }
  strcpy(s50, "-");
  strcpy(s99, "-");
  if (p50 >= 0) {
    snprintf(s50, sizeof(s50), "%.1f", p50 / 1000);
    snprintf(s99, sizeof(s99), "%.1f", p99 / 1000);
  }
  strcpy(rb, "-");
  strcpy(ra, "-");
  if (rss0 >= 0 && rss1 >= 0) {
    snprintf(rb, sizeof(rb), "%ld", rss0);
    snprintf(ra, sizeof(ra), "%ld", rss1);
  }
  if (mode != IDLE)
    strcpy(bpc, "0");
  else if (rss0 >= 0 && rss1 >= 0)
    snprintf(bpc, sizeof(bpc), "%lld",
             (long long)(rss1 - rss0) * 1024 / nconns);
  else
    strcpy(bpc, "-");
  printf("mode=%s transport=%s conns=%d size=%ld depth=%s ops=%llu "
         "seconds=%.3f ops_per_sec=%.0f mb_per_sec=%.2f server_cpu_us=%s "
         "us_per_op=%s p50_us=%s p99_us=%s bytes=%llu rss_before_kb=%s "
         "rss_after_kb=%s bytes_per_conn=%s\n",
         mode_names[mode], is_tcp ? "tcp" : "unix", nconns, size, dep,
         (unsigned long long)(mode == BULK ? bytes / (uint64_t)MB : ops), secs,
         secs > 0 ? nops / secs : 0, secs > 0 ? (double)bytes / MB / secs : 0,
         cpu, per, s50, s99, (unsigned long long)bytes, rb, ra, bpc);
  fflush(stdout);
}

static void report_stuck(void) {
  int count[6] = {0};

  for (int i = 0; i < nslots; i++)
    count[conns[i].state]++;
  fprintf(stderr,
          "loadgen: timed out after %.0f s (--timeout): %llu ops measured, "
          "%d connections not open, %d in their handshake, %d set up, %d "
          "running, %d held\n",
          timeout_secs, (unsigned long long)ops, count[C_FREE], count[C_SETUP],
          count[C_READY], count[C_RUN], count[C_HELD]);
  exit(1);
}

/* ----------------------------------------------------------------- main --- */

static void parse_args(int argc, char **argv) {
  static const struct option longs[] = {
      {"mode", required_argument, NULL, 'M'},
      {"timeout", required_argument, NULL, 'T'},
      {"server-pid", required_argument, NULL, 'P'},
      {"sources", required_argument, NULL, 'S'},
      {"concurrent", required_argument, NULL, 'C'},
      {"idle-exit", no_argument, NULL, 'X'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  bool have_t = false, have_w = false;
  int opt, m;

  while ((opt = getopt_long(argc, argv, "c:m:d:t:w:n:W:h", longs, NULL)) !=
         -1) {
    switch (opt) {
    case 'M':
      for (m = 0; m < 5 && strcmp(optarg, mode_names[m]) != 0; m++)
        ;
      if (m == 5)
        bad_arg("--mode", optarg);
      mode = (enum mode)m;
      break;
    case 'c':
      nconns = (int)parse_long("-c", optarg, 1, 10000000);
      break;
    case 'm':
      size = parse_long("-m", optarg, 1, 1L << 30);
      break;
    case 'd':
      depth = (int)parse_long("-d", optarg, 1, 1000000);
      break;
    case 't':
      run_secs = parse_secs("-t", optarg, 0.001);
      have_t = true;
      break;
    case 'w':
      warm_secs = parse_secs("-w", optarg, 0);
      have_w = true;
      break;
    case 'n':
      count_ops = (uint64_t)parse_long("-n", optarg, 1, LONG_MAX);
      break;
    case 'W':
      warm_count = parse_long("-W", optarg, 0, LONG_MAX);
      break;
    case 'T':
      timeout_secs = parse_secs("--timeout", optarg, 0.001);
      break;
    case 'P':
      server_pid = (pid_t)parse_long("--server-pid", optarg, 1, INT32_MAX);
      break;
    case 'S':
      sources = (int)parse_long("--sources", optarg, 1, 254);
      break;
    case 'C':
      concurrent = (int)parse_long("--concurrent", optarg, 1, 1000000);
      break;
    case 'X':
      idle_exit = true;
      break;
    case 'h':
      usage(stdout, 0);
      break;
    default:
      usage(stderr, 64);
    }
  }
  if (optind != argc - 1)
    usage(stderr, 64);
  parse_target(argv[optind]);
  if (sources > 1 && !is_tcp) {
    fprintf(stderr, "loadgen: --sources is for TCP targets\n");
    exit(64);
  }
  if (count_ops != 0 && (have_t || have_w))
    fprintf(stderr, "loadgen: -n given: -t and -w are ignored\n");
  if (warm_count >= 0 && count_ops == 0 && mode != IDLE) {
    fprintf(stderr, "loadgen: -W goes with -n (or --mode idle)\n");
    exit(64);
  }
  if (nconns < 0)
    nconns = mode == IDLE ? 10000 : 50;
  if (mode == IDLE) {
    if (size >= 0 && size != 1)
      fprintf(stderr, "loadgen: idle connections echo 1 byte: -m ignored\n");
    size = 1;
    if (warm_count < 0)
      warm_count = 64;
  } else if (warm_count < 0) {
    warm_count = 0;
  }
  if (mode == BULK) {
    if (size < 0)
      size = 65536;
    if (size > (long)PAT_EXT) {
      fprintf(stderr, "loadgen: bulk: -m is at most %u\n", PAT_EXT);
      exit(64);
    }
    max_write = (size_t)size;
  }
  if (size < 0)
    size = 64;
  if (mode != PIPELINE)
    depth = 1;
  if (mode == CHURN && nconns > concurrent)
    fprintf(stderr, "loadgen: churn: only %d cycles run at once "
                    "(--concurrent)\n", concurrent);
  if (timeout_secs < 0)
    timeout_secs =
        count_ops != 0 || mode == IDLE ? 600 : warm_secs + run_secs + 60;
  if (mode == CHURN && size <= 16384)
    nodelay = false;
}

/* The run is over: end every connection gently rather than reset it with
 * echoes unread -- write its end (shutdown), keep reading (and verifying)
 * until the server ends it too, for at most DRAIN_SECS. A server sees what a
 * well-behaved client does, instead of ECONNRESET or EPIPE (and SIGPIPE, if
 * it does not ignore it) on every connection. Bytes still queued here are
 * never written. */
#define DRAIN_SECS 10
static void drain(void) {
  uint64_t until = now_ns() + DRAIN_SECS * 1000000000ull;

  for (int i = 0; i < nslots; i++) {
    struct conn *c = &conns[i];

    if (c->state == C_FREE)
      continue;
    set_out(c, false);
    c->queued = c->sent;
    if (shutdown(c->fd, SHUT_WR) != 0) {
      close_conn(c);
      continue;
    }
    c->state = C_DRAIN;
    draining++;
  }
  while (draining > 0) {
    uint64_t now = now_ns();
    int n;

    if (now >= until) {
      fprintf(stderr, "loadgen: %d connections not ended by the server %d s "
                      "after ours: closing them\n", draining, DRAIN_SECS);
      return;
    }
    n = epoll_wait(epfd, events, 1024, (int)((until - now) / 1000000 + 1));
    if (n < 0 && errno != EINTR)
      die("epoll_wait");
    for (int j = 0; j < n; j++)
      if (events[j].data.u64 < TAG_STDIN)
        on_event((int)events[j].data.u64, events[j].events);
  }
}

int main(int argc, char **argv) {
  sigset_t sigs;

  parse_args(argc, argv);
  nslots = mode == IDLE && warm_count > nconns ? (int)warm_count : nconns;
  raise_nofile(nslots);
  signal(SIGPIPE, SIG_IGN);
  fill_pattern();
  conns = calloc((size_t)nslots, sizeof(*conns));
  startq = calloc((size_t)nslots, sizeof(*startq));
  if (mode == PING_PONG || mode == PIPELINE)
    issue_times = calloc((size_t)nslots * (size_t)depth, sizeof(uint64_t));
  if (conns == NULL || startq == NULL ||
      ((mode == PING_PONG || mode == PIPELINE) && issue_times == NULL))
    die("calloc");
  for (int i = 0; i < nslots; i++) {
    conns[i].fd = -1;
    if (issue_times != NULL)
      conns[i].issue = issue_times + (size_t)i * (size_t)depth;
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0)
    die("epoll_create1");
  if (mode == IDLE) {
    int sigfd;

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0)
      die("sigprocmask");
    sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0)
      die("signalfd");
    watch_tag(sigfd, TAG_SIGNAL);
  }

  t_start = now_ns();
  deadline = t_start + (uint64_t)(timeout_secs * 1e9);
  /* What to open first: churn's cycles, idle's warm-up connections, or the
   * connections that the traffic will use. */
  if (mode == CHURN) {
    setup_target = 0;
    if (count_ops != 0 ? warm_count == 0 : warm_secs == 0) {
      begin_measure(t_start);
    } else {
      phase = P_WARM;
      phase_end = t_start + (uint64_t)(warm_secs * 1e9);
    }
    for (int i = 0; i < nconns; i++)
      queue_start(i);
  } else if (mode == IDLE && warm_count > 0) {
    phase = P_WARM;
    setup_target = (int)warm_count;
    for (int i = 0; i < warm_count; i++)
      queue_start(i);
  } else if (mode == IDLE) {
    setup_target = nconns;
    for (int i = 0; i < nconns; i++)
      queue_start(i);
    begin_measure(t_start);
  } else {
    setup_target = nconns;
    for (int i = 0; i < nconns; i++)
      queue_start(i);
  }
  pump();

  while (phase != P_DONE) {
    uint64_t now = now_ns(), until = deadline;
    int n, wait_ms;

    if (phase == P_HOLD) {
      if (stop_holding)
        break;
      until = UINT64_MAX;
    } else if (now >= deadline) {
      report_stuck();
    }
    /* Time-driven phase ends. */
    if (count_ops == 0 && (phase == P_WARM || phase == P_MEASURE) &&
        mode != IDLE && now >= phase_end) {
      if (phase == P_WARM) {
        begin_measure(now);
      } else {
        end_measure(now);
        break;
      }
    }
    if (phase == P_SETTLE && now >= phase_end) {
      rss1 = server_rss_kb();
      print_result();
      printf("ready %d\n", nconns);
      fflush(stdout);
      if (idle_exit)
        break;
      phase = P_HOLD;
      watch_tag(0, TAG_STDIN);
      continue;
    }
    if (phase_end != 0 && phase_end < until &&
        (phase == P_SETTLE ||
         (count_ops == 0 && mode != IDLE &&
          (phase == P_WARM || phase == P_MEASURE))))
      until = phase_end;
    if (start_blocked)
      pump();
    if (start_blocked && now + 1000000 < until)
      until = now + 1000000;
    wait_ms = until == UINT64_MAX ? -1
              : until <= now      ? 0
                                  : (int)((until - now + 999999) / 1000000);
    n = epoll_wait(epfd, events, 1024, wait_ms);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait");
    }
    for (int j = 0; j < n && phase != P_DONE; j++) {
      uint64_t tag = events[j].data.u64;

      if (tag >= TAG_STDIN)
        on_tag((uint32_t)tag);
      else
        on_event((int)tag, events[j].events);
    }
  }

  if (mode != IDLE) {
    drain();
    print_result();
    if (ops == 0 && bytes == 0) {
      fprintf(stderr, "loadgen: no operation completed in the measured "
                      "window\n");
      return 1;
    }
  }
  fprintf(stderr,
          "loadgen: %s over %s, %d connections: %llu bytes echoed and "
          "verified in all\n",
          mode_names[mode], is_tcp ? "TCP" : "a Unix socket", nconns,
          (unsigned long long)total_verified);
  return 0;
}
