/* cnet -- Node.js's `net` module as a C library on libuv.
 *
 * Ownership, in one sentence: you own what you create (cnet_socket_new,
 * cnet_create_server) and give it back with the matching _free; cnet owns the
 * sockets it makes for you (accepted ones, cnet_create_connection) and frees
 * each one after its 'close' listeners return, unless you hold
 * cnet_socket_retain(); nothing is freed while one of its own listeners is
 * running, so any object may be ended, destroyed or freed from inside them.
 *
 * Threads: every object belongs to the loop it was made on and is used from
 * that loop's thread only. Several loops in several threads are fine.
 *
 * Signals: the first cnet object made in a process sets SIGPIPE to ignored
 * if it is still at its default (Node does the same), so that writing to a
 * peer that has gone is an EPIPE 'error', never a dead process.
 *
 * Compiling: <uv.h> needs POSIX declarations. With -std=c11 (strict), define
 * _POSIX_C_SOURCE=200809L; gnu11 (CMake's default) needs nothing.
 *
 * Names: Node's names, mechanically. socket.write() is cnet_socket_write(),
 * net.createServer() is cnet_create_server(), the option allowHalfOpen is the
 * field allow_half_open, the event 'data' is CNET_EV_DATA, the error code
 * 'EADDRINUSE' is the string err->code. docs/node-to-c.md has the whole map.
 *
 * Errors come two ways, as in Node. Misuse that Node throws for returns a
 * negative code at once, does nothing else, and leaves Node's full message in
 * cnet_last_error() (UV_EINVAL for a NULL argument included). Failures at
 * run time are 'error' events (and write callbacks) carrying a cnet_error_t,
 * never delivered from inside the call that caused them. On a NULL object,
 * void functions do nothing and getters answer as for an empty object (0,
 * false, NULL, "closed"); test/test-bad-input.c holds every function to it.
 */
#ifndef CNET_H
#define CNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#if defined(CNET_BUILDING)
#define CNET_EXTERN __declspec(dllexport)
#else
#define CNET_EXTERN
#endif
#elif defined(__GNUC__)
#define CNET_EXTERN __attribute__((visibility("default")))
#else
#define CNET_EXTERN
#endif

#define CNET_VERSION_MAJOR 0
#define CNET_VERSION_MINOR 1
#define CNET_VERSION_PATCH 0

typedef struct cnet_socket_s cnet_socket_t;
typedef struct cnet_server_s cnet_server_t;

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

/* Node's own error codes (lib/internal/errors.js), with the message format
 * Node uses. The numbers start at -6000 so they never collide with libuv's
 * (negative errno values, and -3000..-4095). System errors stay UV_E*. */
#define CNET_NODE_ERROR_MAP(XX)                                                \
  XX(ERR_INVALID_ADDRESS_FAMILY, "Invalid address family: %s")                 \
  XX(ERR_INVALID_ARG_TYPE, "The %s must be of type %s. Received %s")           \
  XX(ERR_INVALID_ADDRESS, "Invalid socket address")                           \
  XX(ERR_INVALID_ARG_VALUE, "The %s %s. Received %s")                          \
  XX(ERR_INVALID_FD_TYPE, "Unsupported fd type: %s")                           \
  XX(ERR_INVALID_HANDLE_TYPE, "This handle type cannot be sent")               \
  XX(ERR_INVALID_IP_ADDRESS, "Invalid IP address: %s")                         \
  XX(ERR_IP_BLOCKED, "IP(%s) is blocked by net.BlockList")                     \
  XX(ERR_IPC_CHANNEL_CLOSED, "Channel closed")                                 \
  XX(ERR_MISSING_ARGS, "The %s argument must be specified")                    \
  XX(ERR_OUT_OF_RANGE, "The value of \"%s\" is out of range. It must be %s. "  \
                       "Received %s")                                          \
  XX(ERR_SERVER_ALREADY_LISTEN,                                                \
     "Listen method has been called more than once without closing.")          \
  XX(ERR_SERVER_NOT_RUNNING, "Server is not running.")                         \
  XX(ERR_SOCKET_BAD_PORT, "%s should be >= 0 and < 65536. Received %s.")       \
  XX(ERR_SOCKET_CLOSED, "Socket is closed")                                    \
  XX(ERR_SOCKET_CLOSED_BEFORE_CONNECTION,                                      \
     "Socket closed before the connection was established")                    \
  XX(ERR_SOCKET_CONNECTION_TIMEOUT, "Socket connection timeout")               \
  XX(ERR_STREAM_ALREADY_FINISHED,                                              \
     "Cannot call %s after a stream was finished")                             \
  XX(ERR_STREAM_DESTROYED, "Cannot call %s after a stream was destroyed")      \
  XX(ERR_STREAM_NULL_VALUES, "May not write null values to stream")            \
  XX(ERR_STREAM_WRITE_AFTER_END, "write after end")                            \
  XX(ERR_UNKNOWN_ENCODING, "Unknown encoding: %s")

enum {
  CNET_ERR_BASE_ = -6000,
#define XX(code, fmt) CNET_##code,
  CNET_NODE_ERROR_MAP(XX)
#undef XX
  CNET_ERR_END_
};

#define CNET_ADDR_MAX 112    /* an IPv6 text with zone, or a Unix path */
#define CNET_HOST_MAX 256    /* a DNS name */
#define CNET_MESSAGE_MAX 512 /* Node's err.message */

/* A Node error object, as a plain value: no pointers into hidden storage, so
 * `cnet_error_t kept = *ev->error;` is all it takes to keep one. */
typedef struct cnet_error_s {
  int errnum;          /* err.errno: negative UV_E*, or a CNET_ERR_* */
  const char *code;    /* err.code: "ECONNREFUSED", "ERR_SOCKET_BAD_PORT" */
  const char *syscall; /* err.syscall: "connect", "listen"; NULL if none */
  int port;            /* err.port: 0 when Node leaves it unset, -1 for pipes */
  int local_port;      /* err.localPort: 0 when unset */
  char address[CNET_ADDR_MAX];       /* err.address; "" when unset */
  char local_address[CNET_ADDR_MAX]; /* err.localAddress; "" when unset */
  char hostname[CNET_HOST_MAX];      /* err.hostname (DNS errors) */
  char message[CNET_MESSAGE_MAX];    /* err.message, byte for byte Node's */
} cnet_error_t;

/* util.getSystemErrorName(): "EADDRINUSE", "ERR_SOCKET_BAD_PORT", or
 * "UNKNOWN". Static storage; never allocates. */
CNET_EXTERN const char *cnet_err_name(int err);

/* The message for a code: libuv's text for system errors ("address already
 * in use"), Node's for ERR_* (unformatted when it takes arguments). */
CNET_EXTERN const char *cnet_strerror(int err);

/* The last synchronous failure of a cnet call on this thread, with Node's
 * full message (what Node would have thrown). Valid until the next failing
 * call on this thread. Never NULL; errnum is 0 if nothing failed yet. */
CNET_EXTERN const cnet_error_t *cnet_last_error(void);

/* Where an 'error' event with no listener goes. Node would crash the process;
 * cnet calls this handler instead, then destroys the object as Node would.
 * The default prints one line to stderr. `what` is "socket" or "server".
 * Pass NULL to restore the default. Process-wide; set it before starting
 * loops in other threads. */
typedef void (*cnet_unhandled_error_fn)(const char *what,
                                        const cnet_error_t *err, void *ctx);
CNET_EXTERN void cnet_set_unhandled_error_handler(cnet_unhandled_error_fn fn,
                                                  void *ctx);

/* ------------------------------------------------------------------------ */
/* Events                                                                    */

#define CNET_EVENT_MAP(XX)                                                     \
  XX(ACCEPT_ERROR, "acceptError") /* cnet's own: see cnet_server_options_t */ \
  XX(CLOSE, "close")                                                           \
  XX(CONNECT, "connect")                                                       \
  XX(CONNECTION, "connection")                                                 \
  XX(CONNECTION_ATTEMPT, "connectionAttempt")                                  \
  XX(CONNECTION_ATTEMPT_FAILED, "connectionAttemptFailed")                     \
  XX(CONNECTION_ATTEMPT_TIMEOUT, "connectionAttemptTimeout")                   \
  XX(DATA, "data")                                                             \
  XX(DRAIN, "drain")                                                           \
  XX(DROP, "drop")                                                             \
  XX(END, "end")                                                               \
  XX(ERROR, "error")                                                           \
  XX(FINISH, "finish")                                                         \
  XX(LISTENING, "listening")                                                   \
  XX(LOOKUP, "lookup")                                                         \
  XX(MESSAGE, "message") /* channels: see cnet_socket_send */                  \
  XX(READY, "ready")                                                           \
  XX(TIMEOUT, "timeout")

typedef enum {
#define XX(name, str) CNET_EV_##name,
  CNET_EVENT_MAP(XX)
#undef XX
  CNET_EV_COUNT_
} cnet_event_type_t;

/* Node's name of an event: "data", "close"; NULL for an unknown type. */
CNET_EXTERN const char *cnet_event_name(cnet_event_type_t type);

/* An address as server.address() / socket.address() report it. For TCP,
 * family is 4 or 6 and port is set; for IPC, family is 0, port is -1 and
 * address holds the path (address_len bytes; an abstract name starts with
 * a NUL byte). */
typedef struct cnet_address_s {
  char address[CNET_ADDR_MAX];
  size_t address_len;
  int port;
  int family;
} cnet_address_t;

/* "IPv4", "IPv6", or NULL for IPC: Node's spelling of a family. */
CNET_EXTERN const char *cnet_family_name(int family);

/* What a listener receives. Everything it points to belongs to cnet and is
 * valid only during the call: copy what you need to keep. In particular
 * 'data' bytes live in a loop-wide read buffer that the next read reuses. */
typedef struct cnet_event_s {
  cnet_event_type_t type;
  union {
    struct {
      const char *base; /* the bytes read */
      size_t len;
    } data; /* CNET_EV_DATA */
    struct {
      bool had_error; /* socket 'close': true after an error or reset */
      /* server 'close': NULL, or ERR_SERVER_NOT_RUNNING when close() was
       * called on a server that was not listening (Node passes that to the
       * close callback only; here every 'close' listener of that emission
       * sees it). */
      const cnet_error_t *error;
    } close;                   /* CNET_EV_CLOSE */
    const cnet_error_t *error; /* CNET_EV_ERROR, CNET_EV_ACCEPT_ERROR */
    /* CNET_EV_CONNECTION: the accepted socket, owned by cnet (freed after
     * its 'close' unless retained). */
    cnet_socket_t *connection;
    /* CNET_EV_DROP: a connection turned away, already closed: by
     * max_connections, or (beyond Node v20) by the server's block_list.
     * Both addresses NULL for IPC (Node passes nothing there). */
    struct {
      const cnet_address_t *local;
      const cnet_address_t *remote;
      bool blocked; /* true: block_list; false: max_connections */
    } drop;
    /* CNET_EV_CONNECTION_ATTEMPT (address, port, family),
     * CNET_EV_CONNECTION_ATTEMPT_FAILED (+ error) and
     * CNET_EV_CONNECTION_ATTEMPT_TIMEOUT: one TCP connection attempt, as
     * Node v20.12 emits them. Not emitted for IPC. */
    struct {
      const char *address; /* the IP tried */
      int port;
      int family;                /* 4 or 6 */
      const cnet_error_t *error; /* _FAILED only, else NULL */
    } attempt;
    /* CNET_EV_MESSAGE, on a channel: the bytes sent, and what came with
     * them. A socket is cnet-owned, like an accepted one (freed after its
     * 'close' unless retained), and like one it starts reading once the
     * listeners return (pause it in the listener to keep the bytes in the
     * kernel); a server is yours (cnet_server_free it), already
     * listening. With no 'message' listener both are closed. */
    struct {
      const void *data;
      size_t len;
      cnet_socket_t *socket;
      cnet_server_t *server;
    } message;
    struct {
      const cnet_error_t *error; /* NULL on success */
      const char *address;       /* the resolved address; NULL on error */
      int family;                /* 4 or 6; 0 on error */
      const char *host;          /* the name looked up */
    } lookup;                    /* CNET_EV_LOOKUP */
  };
} cnet_event_t;

typedef void (*cnet_socket_listener)(cnet_socket_t *socket,
                                     const cnet_event_t *ev, void *ctx);
typedef void (*cnet_server_listener)(cnet_server_t *server,
                                     const cnet_event_t *ev, void *ctx);

/* emitter.on / once / prependListener / off / listenerCount.
 *
 * A listener is the triple (type, fn, ctx). Listeners run in the order they
 * were added; one added during an emit first runs on the next emit; a once
 * listener is removed before it runs. off() removes the most recently added
 * match and, unlike Node, takes effect at once: after off() returns, that
 * registration is never called again, not even by the emit already running
 * (C has no garbage collector to keep its ctx alive). on/once/prepend return
 * 0, UV_ENOMEM, or UV_EINVAL for a NULL object or fn, or an unknown type;
 * off returns 0 whether or not a listener was found. */
CNET_EXTERN int cnet_socket_on(cnet_socket_t *s, cnet_event_type_t type,
                               cnet_socket_listener fn, void *ctx);
CNET_EXTERN int cnet_socket_once(cnet_socket_t *s, cnet_event_type_t type,
                                 cnet_socket_listener fn, void *ctx);
CNET_EXTERN int cnet_socket_prepend_listener(cnet_socket_t *s,
                                             cnet_event_type_t type,
                                             cnet_socket_listener fn,
                                             void *ctx);
CNET_EXTERN int cnet_socket_off(cnet_socket_t *s, cnet_event_type_t type,
                                cnet_socket_listener fn, void *ctx);
CNET_EXTERN size_t cnet_socket_listener_count(const cnet_socket_t *s,
                                              cnet_event_type_t type);

CNET_EXTERN int cnet_server_on(cnet_server_t *srv, cnet_event_type_t type,
                               cnet_server_listener fn, void *ctx);
CNET_EXTERN int cnet_server_once(cnet_server_t *srv, cnet_event_type_t type,
                                 cnet_server_listener fn, void *ctx);
CNET_EXTERN int cnet_server_prepend_listener(cnet_server_t *srv,
                                             cnet_event_type_t type,
                                             cnet_server_listener fn,
                                             void *ctx);
CNET_EXTERN int cnet_server_off(cnet_server_t *srv, cnet_event_type_t type,
                                cnet_server_listener fn, void *ctx);
CNET_EXTERN size_t cnet_server_listener_count(const cnet_server_t *srv,
                                              cnet_event_type_t type);

/* ------------------------------------------------------------------------ */
/* Loop                                                                      */

/* Run the default loop until nothing referenced is left -- Node's "the
 * process exits when the loop is empty". Returns 0, or a libuv error. For
 * another loop, run it with uv_run() as usual: cnet needs nothing more. */
CNET_EXTERN int cnet_run(void);

/* The allocator cnet and libuv use (libuv's uv_replace_allocator, which this
 * calls too): C's malloc family unless replaced. Call it before any other
 * cnet or libuv call, once; the functions must behave as C's do (realloc
 * and calloc included). 0, or ERR_MISSING_ARGS if one is NULL. On a warm
 * loop cnet allocates nothing per read, per write that completes at once,
 * or per event: counting with this is how the tests check it. */
typedef void *(*cnet_malloc_func)(size_t size);
typedef void *(*cnet_realloc_func)(void *ptr, size_t size);
typedef void *(*cnet_calloc_func)(size_t count, size_t size);
typedef void (*cnet_free_func)(void *ptr);

CNET_EXTERN int cnet_replace_allocator(cnet_malloc_func malloc_fn,
                                       cnet_realloc_func realloc_fn,
                                       cnet_calloc_func calloc_fn,
                                       cnet_free_func free_fn);

/* ------------------------------------------------------------------------ */
/* IP utilities                                                              */

/* net.isIP(s): 4, 6 or 0, exactly as Node v20 answers. NULL gives 0. */
CNET_EXTERN int cnet_is_ip(const char *s);
/* net.isIPv4(s) / net.isIPv6(s). */
CNET_EXTERN bool cnet_is_ipv4(const char *s);
CNET_EXTERN bool cnet_is_ipv6(const char *s);
/* isIP over len bytes; an embedded NUL byte is never an address. */
CNET_EXTERN int cnet_is_ip_n(const char *s, size_t len);

/* net.SocketAddress: an IP address and port as a plain value. */
typedef struct cnet_socket_address_s {
  char address[CNET_ADDR_MAX]; /* canonical text ("::1", not "0::01") */
  int port;                    /* 0..65535 */
  int family;                  /* 4 or 6 */
  uint32_t flowlabel;          /* IPv6 flow label; 0 for IPv4 */
} cnet_socket_address_t;

/* new net.SocketAddress([options]) options. All zero is Node's default:
 * 127.0.0.1 port 0 (family 6: "::"). */
typedef struct cnet_socket_address_options_s {
  const char *address; /* an IP of the family; NULL: the default above */
  int family;          /* 0 or 4: IPv4 (Node's default), 6: IPv6 */
  int port;
  uint32_t flowlabel;
} cnet_socket_address_options_t;

/* new net.SocketAddress(options). 0, or at once: ERR_INVALID_ARG_VALUE
 * (family not 0/4/6), ERR_SOCKET_BAD_PORT, ERR_INVALID_ADDRESS (address
 * not of that family: "Invalid socket address"), ERR_OUT_OF_RANGE (an IPv6
 * flowlabel above 0xfffff; Node v20 aborts). opts NULL: defaults. As in
 * Node (libuv's uv_ip6_addr), any "%zone" is accepted and dropped -- no
 * scope id is kept -- and the text before it is cut at 39 bytes. */
CNET_EXTERN int cnet_socket_address_init(
    cnet_socket_address_t *out, const cnet_socket_address_options_t *opts);
/* SocketAddress.parse(input) (Node v22.13+): "1.2.3.4:80", "[::1]:123",
 * or an address alone (port 0), read as a URL's host and port are: IPv4
 * shorthands such as "256" (0.0.1.0) and "0x7f.1" (127.0.0.1) are
 * accepted, a port is 0..65535 in decimal; userinfo, path, query and
 * fragment are ignored. 0, or ERR_INVALID_ADDRESS where Node returns
 * undefined. Unlike v22.13, an explicit ":80" is kept (Node's own test
 * expects it; nodejs/node#62906), and a host that is not ASCII is refused
 * (no IDNA mapping). */
CNET_EXTERN int cnet_socket_address_parse(cnet_socket_address_t *out,
                                          const char *input);
/* The inverse of parse: "1.2.3.4:80" or "[::1]:123" into buf (always
 * NUL-terminated when size > 0). Returns the length the full text needs,
 * as snprintf does. */
CNET_EXTERN size_t cnet_socket_address_format(const cnet_socket_address_t *sa,
                                              char *buf, size_t size);

/* net.BlockList: rules that match IPv4 and IPv6 addresses. As in Node, an
 * IPv4 address and its IPv4-mapped IPv6 form (::ffff:1.2.3.4) are the same
 * address to address and subnet rules, both ways; an IPv6 range whose ends
 * are not both mapped matches only IPv6 addresses (Node's rule, kept). A list may be shared by servers and sockets on
 * several loops and threads: each call takes the list's own lock. It must
 * outlive every server and connect that names it. */
typedef struct cnet_block_list_s cnet_block_list_t;

/* new net.BlockList(). NULL with cnet_last_error() when out of memory. */
CNET_EXTERN cnet_block_list_t *cnet_block_list_new(void);
CNET_EXTERN void cnet_block_list_free(cnet_block_list_t *bl);

/* family is Node's type argument: 0 or 4 for IPv4 (Node's default), 6 for
 * IPv6. Each returns 0, or at once (the list unchanged):
 * ERR_INVALID_ARG_VALUE (family), ERR_INVALID_ADDRESS (an address that is
 * not of the family), UV_EINVAL (NULL), UV_ENOMEM. */
/* blockList.addAddress(address[, type]) */
CNET_EXTERN int cnet_block_list_add_address(cnet_block_list_t *bl,
                                            const char *address, int family);
/* blockList.addRange(start, end[, type]): inclusive; start after end is
 * ERR_INVALID_ARG_VALUE ("must come before end"). */
CNET_EXTERN int cnet_block_list_add_range(cnet_block_list_t *bl,
                                          const char *start, const char *end,
                                          int family);
/* blockList.addSubnet(net, prefix[, type]): prefix 0..32 (IPv4) or 0..128
 * (IPv6), else ERR_OUT_OF_RANGE. */
CNET_EXTERN int cnet_block_list_add_subnet(cnet_block_list_t *bl,
                                           const char *network, int prefix,
                                           int family);
/* One rule as blockList.rules prints it ("Address: IPv4 1.2.3.4",
 * "Range: IPv6 ::1-::ff", "Subnet: IPv4 10.0.0.0/8") -- Node v22.19's
 * BlockList.fromJSON for one entry, but strict: any text that is not such
 * a valid rule (a backwards range, a prefix too long included) is
 * ERR_INVALID_ARG_VALUE ("The argument 'rule' is invalid. Received
 * '...'"), where fromJSON skips it. */
CNET_EXTERN int cnet_block_list_add_rule(cnet_block_list_t *bl,
                                         const char *rule);
/* blockList.check(address[, type]): true when a rule matches. Text that is
 * not an address of the family is false, as Node. */
CNET_EXTERN bool cnet_block_list_check(const cnet_block_list_t *bl,
                                       const char *address, int family);
/* check() for a struct sockaddr (AF_INET or AF_INET6; others are false).
 * An IPv4-mapped sockaddr_in6 is checked as the IPv6 address it is, which
 * differs from its IPv4 form only for IPv6 ranges (as in Node). */
CNET_EXTERN bool cnet_block_list_check_sockaddr(const cnet_block_list_t *bl,
                                                const struct sockaddr *sa);
/* blockList.rules: how many, and rule i (0 is the newest, as Node lists
 * them) written into buf like snprintf (the return value is the length of
 * the whole rule; 0 when i is past the end). */
CNET_EXTERN size_t cnet_block_list_rule_count(const cnet_block_list_t *bl);
CNET_EXTERN size_t cnet_block_list_rule(const cnet_block_list_t *bl, size_t i,
                                        char *buf, size_t size);

/* ------------------------------------------------------------------------ */
/* Encodings and string_decoder                                              */

/* Node's encodings. Text on the C side is always UTF-8: "decoding" turns
 * bytes into UTF-8 text as Node turns a Buffer into a string (and then the
 * string into UTF-8), "encoding" turns UTF-8 text into bytes as
 * Buffer.from(string, encoding) does. */
typedef enum {
  CNET_ENC_UNKNOWN = 0,
  CNET_ENC_UTF8,      /* "utf8", "utf-8" */
  CNET_ENC_UTF16LE,   /* "utf16le", "utf-16le", "ucs2", "ucs-2" */
  CNET_ENC_LATIN1,    /* "latin1", "binary" */
  CNET_ENC_ASCII,     /* "ascii" */
  CNET_ENC_BASE64,    /* "base64" */
  CNET_ENC_BASE64URL, /* "base64url" */
  CNET_ENC_HEX        /* "hex" */
} cnet_encoding_t;

/* Node's normalizeEncoding(): any letter case; NULL or "" is utf8 (Node's
 * default). CNET_ENC_UNKNOWN for anything else. */
CNET_EXTERN cnet_encoding_t cnet_encoding_from_name(const char *name);
/* The canonical name ("utf8", "utf16le", "latin1", ...), NULL if unknown. */
CNET_EXTERN const char *cnet_encoding_name(cnet_encoding_t enc);

/* new StringDecoder(encoding): a streaming decoder that never splits a
 * character. Its state is a plain value (no allocation, nothing to free);
 * zero it or call cnet_decoder_init. */
typedef struct cnet_decoder_s {
  cnet_encoding_t encoding;
  unsigned char pending[4]; /* bytes of a character not yet complete */
  uint8_t pending_len;
  uint8_t need; /* bytes still missing (utf8) */
} cnet_decoder_t;

/* 0, or ERR_UNKNOWN_ENCODING ("Unknown encoding: x") at once. */
CNET_EXTERN int cnet_decoder_init(cnet_decoder_t *d, const char *encoding);
/* Room cnet_decoder_write needs for len input bytes (and what it keeps);
 * cnet_decoder_end needs CNET_DECODER_END_MAX. */
CNET_EXTERN size_t cnet_decoder_max_length(const cnet_decoder_t *d,
                                           size_t len);
#define CNET_DECODER_END_MAX 16
/* decoder.write(buf): decodes len bytes into out as UTF-8 and returns how
 * many bytes of text were written (not NUL-terminated). Bytes of a
 * character that is not complete yet are kept for the next call; invalid
 * UTF-8 becomes U+FFFD exactly where Node's decoder puts one. */
CNET_EXTERN size_t cnet_decoder_write(cnet_decoder_t *d, const void *in,
                                      size_t len, char *out);
/* decoder.end(): whatever is kept, flushed (U+FFFD for a cut UTF-8
 * character, base64's padded remainder); the decoder is then empty.
 * Both: a NULL d or out (or in, with len > 0) returns 0 and does nothing. */
CNET_EXTERN size_t cnet_decoder_end(cnet_decoder_t *d, char *out);

/* Buffer.from(text, encoding): the bytes Node would produce for the
 * string whose UTF-8 form is text[0..len) (invalid UTF-8 counts as
 * U+FFFD). hex stops at the first pair that is not hex; base64 skips what
 * is not in its alphabet, as Node does. cnet_encode_max_length(enc, len)
 * bytes of room are always enough. A NULL out (or text, with len > 0)
 * returns 0. */
CNET_EXTERN size_t cnet_encode_max_length(cnet_encoding_t enc, size_t len);
CNET_EXTERN size_t cnet_encode(cnet_encoding_t enc, const char *text,
                               size_t len, void *out);

/* ------------------------------------------------------------------------ */
/* Server                                                                    */

/* net.createServer([options]) options. All zero means Node's defaults.
 *
 * Accept failures. When accept() fails for want of resources (EMFILE,
 * ENFILE, ENOBUFS, ENOMEM) or for one connection's sake (ECONNABORTED,
 * EPROTO, ...), the server does not emit 'error' -- Node does, and the
 * docs' own example throws from it, so a Node server dies when it runs out
 * of descriptors. A cnet server emits CNET_EV_ACCEPT_ERROR (ev->error is
 * what Node's 'error' would carry: "accept EMFILE"), counts it
 * (cnet_server_accept_errors), and keeps listening. After a resource
 * failure it stops calling accept() and tries again after 10 ms, doubling
 * up to 1 s while the failures last: the loop never spins, and pending
 * clients wait in the kernel's backlog rather than being cut off. */
typedef struct cnet_server_options_s {
  bool allow_half_open;  /* accepted sockets keep writing after 'end' */
  bool pause_on_connect; /* accepted sockets read nothing until resumed */
  bool no_delay;         /* TCP_NODELAY on accepted sockets */
  bool keep_alive;       /* SO_KEEPALIVE on accepted sockets */
  unsigned keep_alive_initial_delay; /* ms; whole seconds reach the kernel */
  size_t high_water_mark; /* accepted sockets' write high-water mark;
                             0 means 16384, as Node v20 */
  /* server.maxConnections: with this many accepted connections open, a new
   * one is closed at once and 'drop' is emitted instead of 'connection'.
   * 0 means no limit, as in Node v20. */
  unsigned max_connections;
  /* Beyond Node v20 (Node v22.13's blockList): a peer the list blocks is
   * closed before any 'connection', counted (cnet_server_blocked) and
   * reported with 'drop' (ev->drop.blocked). Not owned: it must outlive
   * the server. NULL: no list. */
  const cnet_block_list_t *block_list;
  /* IPC servers: accepted sockets are channels (cnet_socket_send). */
  bool channel;
} cnet_server_options_t;

/* server.listen(options) options. port 0 with no path is a random free port,
 * like listen() with no arguments. */
typedef struct cnet_listen_options_s {
  int port;         /* 0..65535; else ERR_SOCKET_BAD_PORT */
  const char *host; /* NULL: "::" dual-stack, else "0.0.0.0"; a name is
                       looked up first (the bind then happens later) */
  /* IPC: a Unix socket path; used only when port is 0. Never truncated:
   * a path that does not fit sun_path (107 bytes and a NUL on Linux) is
   * ENAMETOOLONG (Node v20 binds a shorter, different name). On Linux a
   * leading NUL byte makes an abstract name (no file; give path_len).
   * An empty path is ERR_INVALID_ARG_VALUE, as Node's { path: '' }. */
  const char *path;
  size_t path_len;  /* 0: strlen(path); set it for abstract names */
  int backlog;      /* 0: 511 */
  /* Node's cluster flag. In cnet a listen() always binds a socket of its
   * own -- that is exclusive=true -- and sharing one listening socket
   * between processes is explicit: the primary sends its server over a
   * channel (cnet_socket_send_server). Recorded, changes nothing. */
  bool exclusive;
  bool ipv6_only;   /* turn off dual-stack on "::" */
  /* SO_REUSEPORT (Node v22.12's reusePort): several sockets -- in other
   * loops, threads or processes -- may listen on the same address and port,
   * and the kernel spreads new connections among them. Linux >= 3.9. */
  bool reuse_port;
  /* IPC: make the socket file readable / writable by everyone. Not with an
   * abstract name (ERR_INVALID_ARG_VALUE, as Node). */
  bool readable_all, writable_all;
} cnet_listen_options_t;

/* net.createServer([options][, connectionListener]) -- a server, not yet
 * listening. connection_listener (may be NULL) is added as an 'connection'
 * listener with ctx. You own the server: cnet_server_free() it. NULL with
 * cnet_last_error() on failure. */
CNET_EXTERN cnet_server_t *cnet_create_server(
    uv_loop_t *loop, const cnet_server_options_t *opts,
    cnet_server_listener connection_listener, void *ctx);

/* server.listen(options[, callback]). cb (may be NULL) is added with
 * once('listening'). Returns 0, or at once: ERR_SOCKET_BAD_PORT,
 * ERR_SERVER_ALREADY_LISTEN, ERR_INVALID_ARG_VALUE, UV_ENAMETOOLONG.
 * Failures of the bind itself (EADDRINUSE, EACCES) are 'error' events, as
 * in Node; the server may listen again after one. */
CNET_EXTERN int cnet_server_listen(cnet_server_t *srv,
                                   const cnet_listen_options_t *opts,
                                   cnet_server_listener cb, void *ctx);
/* server.listen(port[, host][, backlog][, cb]); host NULL and backlog 0 are
 * the defaults. */
CNET_EXTERN int cnet_server_listen_port(cnet_server_t *srv, int port,
                                        const char *host, int backlog,
                                        cnet_server_listener cb, void *ctx);
/* server.listen(path[, backlog][, cb]) */
CNET_EXTERN int cnet_server_listen_path(cnet_server_t *srv, const char *path,
                                        int backlog, cnet_server_listener cb,
                                        void *ctx);
/* server.listen({fd}) -- listen on a socket someone else made: a TCP or
 * Unix stream socket, bound or not (an unbound TCP socket gets a random
 * port), e.g. one inherited from systemd (LISTEN_FDS; fds start at 3). The
 * server takes the descriptor over once listening starts and closes it on
 * close(); if 'error' is emitted instead (EINVAL for a descriptor that is
 * not a stream socket, as Node's "listen EINVAL: invalid argument"), it is
 * still yours. Returns 0, or ERR_SERVER_ALREADY_LISTEN / UV_EBADF at once. */
CNET_EXTERN int cnet_server_listen_fd(cnet_server_t *srv, int fd,
                                      int backlog, cnet_server_listener cb,
                                      void *ctx);
/* server.listen(handle) with another server's or a socket's handle: srv
 * listens on its own duplicate of that descriptor, so both accept from one
 * socket (the kernel hands each connection to one of them) and each closes
 * independently. ERR_SERVER_NOT_RUNNING (server) or UV_EBADF (socket) at
 * once when there is no descriptor to share. */
CNET_EXTERN int cnet_server_listen_server(cnet_server_t *srv,
                                          const cnet_server_t *other,
                                          int backlog,
                                          cnet_server_listener cb, void *ctx);
CNET_EXTERN int cnet_server_listen_socket(cnet_server_t *srv,
                                          const cnet_socket_t *socket,
                                          int backlog,
                                          cnet_server_listener cb, void *ctx);

/* server.address(): 0 and *out filled while listening; UV_ENOTCONN before
 * listening and after close() (Node returns null); another negative code if
 * the system call fails. */
CNET_EXTERN int cnet_server_address(const cnet_server_t *srv,
                                    cnet_address_t *out);
/* server.listening */
CNET_EXTERN bool cnet_server_listening(const cnet_server_t *srv);

/* server.close([callback]) -- stop accepting at once; 'close' follows once
 * every accepted connection has closed. cb (may be NULL) is added with
 * once('close'); when the server was not listening, 'close' is still emitted
 * and carries ERR_SERVER_NOT_RUNNING. An IPC server removes the socket file
 * it created. Returns 0 (UV_EINVAL for NULL). */
CNET_EXTERN int cnet_server_close(cnet_server_t *srv, cnet_server_listener cb,
                                  void *ctx);

/* Beyond Node: end() every accepted connection that is idle now, and
 * return how many were ended. A connection is idle when nothing is waiting
 * to be written and nothing has been read since its last write went out
 * (or ever) -- a request/response peer between requests. The server keeps
 * listening. */
CNET_EXTERN int cnet_server_close_idle(cnet_server_t *srv);

/* Beyond Node: close() and shut down gracefully. Idle connections are
 * ended now and busy ones as soon as they go idle (see close_idle); after
 * deadline_ms (0: no deadline) whatever is still open is destroyed, so
 * 'close' comes in bounded time even with keep-alive clients that never
 * leave. cb as in cnet_server_close(). */
CNET_EXTERN int cnet_server_close_gracefully(cnet_server_t *srv,
                                             uint64_t deadline_ms,
                                             cnet_server_listener cb,
                                             void *ctx);

/* server.getConnections(cb) -- cb runs later (never inside this call) with
 * the number of open accepted connections. What is counted, precisely:
 * sockets this server object accepted in this process that are still
 * open. A socket handed to another process (cnet_socket_send_socket)
 * stops counting here when the hand-off completes (with keep_open it is
 * still open here, and counts) and is not counted by the receiver's
 * server, if any; a server shared with other processes
 * counts only what it accepted itself. Summing across processes is the
 * application's (send the counts over the channel). */
typedef void (*cnet_count_cb)(cnet_server_t *srv, const cnet_error_t *err,
                              size_t count, void *ctx);
CNET_EXTERN int cnet_server_get_connections(cnet_server_t *srv,
                                            cnet_count_cb cb, void *ctx);
/* The same count, now. */
CNET_EXTERN size_t cnet_server_connections(const cnet_server_t *srv);

/* server.maxConnections, read and set at any time (0: no limit). Lowering
 * it closes nothing already open. */
CNET_EXTERN unsigned cnet_server_max_connections(const cnet_server_t *srv);
CNET_EXTERN void cnet_server_set_max_connections(cnet_server_t *srv,
                                                 unsigned max);

/* How many accept() failures the server has survived (each one was a
 * CNET_EV_ACCEPT_ERROR). */
CNET_EXTERN uint64_t cnet_server_accept_errors(const cnet_server_t *srv);
/* How many connections the block_list turned away. */
CNET_EXTERN uint64_t cnet_server_blocked(const cnet_server_t *srv);

/* server.ref() / server.unref(): whether a listening server keeps the loop
 * alive. Remembered before listen. */
CNET_EXTERN void cnet_server_ref(cnet_server_t *srv);
CNET_EXTERN void cnet_server_unref(cnet_server_t *srv);

/* Close (if listening) and give the server back. Its 'close' listeners still
 * run; the memory goes after them, and never while it is inside one
 * of its own listeners. Accepted sockets live on and close on their own. */
CNET_EXTERN void cnet_server_free(cnet_server_t *srv);

CNET_EXTERN void cnet_server_set_data(cnet_server_t *srv, void *data);
CNET_EXTERN void *cnet_server_get_data(const cnet_server_t *srv);
CNET_EXTERN uv_loop_t *cnet_server_loop(const cnet_server_t *srv);

/* ------------------------------------------------------------------------ */
/* Socket                                                                    */

/* The onread option: reads go into memory the user gives, and each chunk
 * goes to callback instead of 'data' ('end' is still emitted). Either a
 * buffer reused for every read, or get_buffer, called before each read for
 * the memory to use (return NULL to use `buffer`). callback gets the
 * bytes; returning false pauses the socket (as pause() inside it does),
 * until resume(). */
typedef bool (*cnet_onread_cb)(cnet_socket_t *s, char *data, size_t nread,
                               void *ctx);
typedef struct cnet_onread_s {
  char *buffer;
  size_t len;
  char *(*get_buffer)(cnet_socket_t *s, size_t *len, void *ctx);
  cnet_onread_cb callback;
  void *ctx;
} cnet_onread_t;

/* new net.Socket([options]) options. All zero means Node's defaults. */
typedef struct cnet_socket_options_s {
  bool allow_half_open;   /* keep writing after the peer's FIN */
  size_t high_water_mark; /* write high-water mark; 0 means 16384 */
  const cnet_onread_t *onread; /* copied; NULL: 'data' events as usual */
  /* new net.Socket({fd}): wrap an open descriptor -- a connected TCP or
   * Unix stream socket, or a pipe or FIFO -- rather than connect later.
   * Used only when wrap_fd is set (0 is a real descriptor). Anything else
   * is ERR_INVALID_FD_TYPE ("Unsupported fd type: FILE"; TTY, UDP,
   * UNKNOWN). The socket owns the descriptor once cnet_socket_new
   * returns it (NULL: it is still yours). It reads at once (no 'connect'
   * event), as Node's does. */
  bool wrap_fd;
  int fd;
  /* With fd: the directions to use. Both false (the default) means both,
   * as Node does when neither is given; readable alone is a read-only
   * socket (writes fail as after end(): a pipe's read end), writable
   * alone a write-only one (it never reads; 'end' never comes). */
  bool readable, writable;
  /* Beyond Node: the descriptor (a Unix socket) is a channel that carries
   * messages and descriptors between processes: see cnet_socket_send. */
  bool channel;
} cnet_socket_options_t;

/* ---- Name lookup (dns.lookup and the connect option `lookup`) ---------- */

/* getaddrinfo's hints, as Node's dns.ADDRCONFIG, dns.V4MAPPED, dns.ALL. */
#define CNET_ADDRCONFIG AI_ADDRCONFIG
#define CNET_V4MAPPED AI_V4MAPPED
#define CNET_ALL AI_ALL

/* What connect() asks a resolver: Node's dns.lookup options. */
typedef struct cnet_lookup_options_s {
  int family; /* 0 (any), 4 or 6 */
  int hints;  /* CNET_ADDRCONFIG is added when family is 0 and hints 0 */
  bool all;   /* true when family autoselection wants every address */
} cnet_lookup_options_t;

/* One answer: an IP literal (anything else fails the connect with
 * ERR_INVALID_IP_ADDRESS) and its family (not 4 or 6:
 * ERR_INVALID_ADDRESS_FAMILY). */
typedef struct cnet_lookup_address_s {
  const char *address;
  int family;
} cnet_lookup_address_t;

/* A lookup in progress, handed to the resolver. */
typedef struct cnet_lookup_s cnet_lookup_t;

/* The connect option `lookup`: a resolver. It is called inside connect()
 * and must answer exactly once, then or later, on the loop's thread, with
 * cnet_lookup_done() or cnet_lookup_fail(); until it does, the socket's
 * memory (not its connection) is kept. A late answer for a socket
 * destroyed meanwhile is dropped, as Node drops it. host stays valid until
 * the answer. */
typedef void (*cnet_lookup_fn)(cnet_lookup_t *req, const char *host,
                               const cnet_lookup_options_t *opts, void *ctx);

/* Answer with n addresses (copied during the call; with `all` false only
 * the first is used), or with err < 0: a getaddrinfo code (UV_EAI_NONAME
 * reads "getaddrinfo ENOTFOUND <host>", as Node's dns errors) or any
 * libuv code. Success with n == 0 counts as UV_EAI_NONAME. */
CNET_EXTERN void cnet_lookup_done(cnet_lookup_t *req, int err,
                                  const cnet_lookup_address_t *addrs,
                                  size_t n);
/* Answer with an error of your own making (copied), as a custom Node
 * lookup passes its err: 'lookup' and then 'error' carry it as given. */
CNET_EXTERN void cnet_lookup_fail(cnet_lookup_t *req, const cnet_error_t *err);
/* The loop the lookup belongs to, for resolvers that need one. */
CNET_EXTERN uv_loop_t *cnet_lookup_loop(const cnet_lookup_t *req);

/* dns.lookup: the resolver connect() uses by default -- getaddrinfo on
 * libuv's thread pool, answers in the order the system gives them (Node
 * v20's verbatim order). A custom resolver may call it to delegate. */
CNET_EXTERN void cnet_lookup_system(cnet_lookup_t *req, const char *host,
                                    const cnet_lookup_options_t *opts,
                                    void *ctx);

/* ---- Family autoselection ("happy eyeballs") ---------------------------- */

typedef enum {
  CNET_AUTO_SELECT_DEFAULT = 0, /* the process default (below) */
  CNET_AUTO_SELECT_OFF,         /* try the first address only */
  /* Node v20's autoSelectFamily: addresses alternate between families;
   * each attempt but the last is abandoned after the attempt timeout and
   * the next one starts. */
  CNET_AUTO_SELECT_ON,
  /* Beyond Node (RFC 8305): attempts start one attempt timeout apart (at
   * once when the one before fails) and are left running side by side;
   * the first to connect wins and the others are closed, without an
   * event. A slow first address no longer kills a connection the second
   * would have made. Starting the next attempt is not a timeout: no
   * 'connectionAttemptTimeout' in this mode (but see connect_timeout). */
  CNET_AUTO_SELECT_PARALLEL
} cnet_auto_select_t;

/* net.getDefaultAutoSelectFamily() / setDefaultAutoSelectFamily(): true
 * (ON) unless changed. Process-wide, safe from any thread. */
CNET_EXTERN bool cnet_get_default_auto_select_family(void);
CNET_EXTERN void cnet_set_default_auto_select_family(bool enable);
/* net.getDefaultAutoSelectFamilyAttemptTimeout() / set...(ms): 250 unless
 * changed. The setter returns 0, or ERR_OUT_OF_RANGE for 0 or more than
 * 2^31-1; 1..9 are raised to 10, as Node. */
CNET_EXTERN unsigned cnet_get_default_auto_select_family_attempt_timeout(void);
CNET_EXTERN int cnet_set_default_auto_select_family_attempt_timeout(
    unsigned ms);

/* socket.connect(options) / net.createConnection(options) options. What
 * the strings point to is copied during the call. */
typedef struct cnet_connect_options_s {
  int port;         /* TCP: 1..65535 here (0 means "not given"; use
                       cnet_socket_connect_port to try port 0) */
  const char *host; /* an IP or a name; NULL: "localhost" */
  /* IPC: connect to a Unix socket; the TCP fields are then ignored. As for
   * listen: never truncated (ENAMETOOLONG), a leading NUL byte is a Linux
   * abstract name. In error messages an abstract name's NUL shows as '@'. */
  const char *path;
  size_t path_len;  /* 0: strlen(path); set it for abstract names */
  int family;       /* 0, 4 or 6: which addresses a name may resolve to */
  int hints;        /* CNET_ADDRCONFIG | CNET_V4MAPPED | CNET_ALL; any
                       other bit is ERR_INVALID_ARG_VALUE */
  /* Bind the connecting socket first (either or both). local_address must
   * be an IP literal (ERR_INVALID_IP_ADDRESS); it turns autoselection
   * off, as in Node. A local_port in use fails with "bind EADDRINUSE";
   * one outside 0..65535 is ERR_SOCKET_BAD_PORT at once (Node v20 lets
   * 65536 through to the bind). */
  const char *local_address;
  int local_port;   /* 0: any */
  cnet_lookup_fn lookup; /* NULL: cnet_lookup_system */
  void *lookup_ctx;
  cnet_auto_select_t auto_select_family;
  /* ms between attempts; 0: the process default; 1..9 are raised to 10;
   * more than 2^31-1 is ERR_OUT_OF_RANGE. */
  unsigned auto_select_family_attempt_timeout;
  /* Beyond Node: give up when not connected this many ms after connect()
   * (lookup included): 'error' ETIMEDOUT, then 'close'. Unlike `timeout`,
   * which is the idle timer and only notifies. The message names the
   * attempt running ("connect ETIMEDOUT 10.0.0.1:80"), or the name while
   * it is still being looked up ("connect ETIMEDOUT example.com:80");
   * when autoselecting among several addresses each running attempt gets
   * 'connectionAttemptTimeout' and the error is the all-failed one. 0: no
   * limit but the system's. */
  uint64_t connect_timeout;
  /* Beyond Node v20 (v22.13's blockList): a destination the list blocks
   * fails with ERR_IP_BLOCKED ("IP(10.0.0.1) is blocked by
   * net.BlockList"), before any packet is sent. When autoselecting, a
   * blocked address is an attempt that failed so (connectionAttemptFailed)
   * and the next address is tried. */
  const cnet_block_list_t *block_list;
  bool allow_half_open;   /* cnet_create_connection only */
  size_t high_water_mark; /* cnet_create_connection only; 0 means 16384 */
  bool no_delay;          /* TCP_NODELAY once connected */
  bool keep_alive;        /* SO_KEEPALIVE once connected */
  unsigned keep_alive_initial_delay; /* ms */
  uint64_t timeout;       /* socket.setTimeout(timeout) at once; 0: none */
  const cnet_onread_t *onread; /* cnet_create_connection only */
  bool channel; /* IPC only: the connection is a channel (cnet_socket_send) */
} cnet_connect_options_t;

/* new net.Socket([options]) -- a socket with no connection yet. You own it:
 * cnet_socket_free() it; it may connect again after each 'close'. */
CNET_EXTERN cnet_socket_t *cnet_socket_new(uv_loop_t *loop,
                                           const cnet_socket_options_t *opts);

/* socket.connect(options[, connectListener]). cb (may be NULL) is added with
 * once('connect'). Returns 0, or at once: ERR_MISSING_ARGS (neither port nor
 * path), ERR_SOCKET_BAD_PORT (port, local_port), ERR_INVALID_ARG_VALUE
 * (family, hints, auto_select_family), ERR_INVALID_IP_ADDRESS
 * (local_address), ERR_OUT_OF_RANGE (attempt timeout), UV_EBUSY (already
 * connecting or connected), UV_ENAMETOOLONG. Everything the network says
 * -- ECONNREFUSED, ENOTFOUND -- is an 'error' event, then 'close'.
 *
 * Events, as Node v20.12: 'lookup' (only for a name, once per address the
 * resolver gave when autoselecting), then per attempt 'connectionAttempt'
 * and 'connectionAttemptFailed' or 'connectionAttemptTimeout', then
 * 'connect' and 'ready'. When several addresses were tried and all
 * failed, the 'error' has the first attempt's code and, unlike Node's
 * empty AggregateError message, a message naming every address tried and
 * why ("connect ECONNREFUSED ::1:80; connect ECONNREFUSED 127.0.0.1:80");
 * cnet_socket_attempt_error() gives each attempt's own error. */
CNET_EXTERN int cnet_socket_connect(cnet_socket_t *s,
                                    const cnet_connect_options_t *opts,
                                    cnet_socket_listener cb, void *ctx);
/* socket.connect(port[, host][, cb]); port 0 passes validation and fails at
 * connect time, as in Node. */
CNET_EXTERN int cnet_socket_connect_port(cnet_socket_t *s, int port,
                                         const char *host,
                                         cnet_socket_listener cb, void *ctx);
/* socket.connect(path[, cb]) */
CNET_EXTERN int cnet_socket_connect_path(cnet_socket_t *s, const char *path,
                                         cnet_socket_listener cb, void *ctx);

/* net.createConnection(options[, connectListener]), alias cnet_connect():
 * a new socket, connecting. cnet owns it and frees it after 'close' (retain
 * it to keep it longer). NULL with cnet_last_error() on misuse. */
CNET_EXTERN cnet_socket_t *cnet_create_connection(
    uv_loop_t *loop, const cnet_connect_options_t *opts,
    cnet_socket_listener connect_listener, void *ctx);
CNET_EXTERN cnet_socket_t *cnet_connect(uv_loop_t *loop,
                                        const cnet_connect_options_t *opts,
                                        cnet_socket_listener connect_listener,
                                        void *ctx);

/* Called once per write, in order: err NULL when the data was handed to the
 * kernel, else why it was not (the socket may be gone after an error:
 * ERR_STREAM_DESTROYED, ERR_STREAM_WRITE_AFTER_END, write EPIPE, ...). Never
 * called from inside the call that took the write. */
typedef void (*cnet_write_cb)(cnet_socket_t *s, const cnet_error_t *err,
                              void *ctx);
/* Releases a buffer given to cnet_socket_write_owned(). */
typedef void (*cnet_release_fn)(void *data, size_t len, void *ctx);

/* socket.write(data[, callback]). The bytes are yours again when this
 * returns: what the kernel does not take at once is copied. Returns 1 when
 * all of it reached the kernel during the call, 0 when some was queued in
 * user memory (wait for 'drain' before writing much more), or a negative
 * code for misuse Node throws for (ERR_STREAM_NULL_VALUES for NULL data
 * with len > 0; then nothing was done and cb never runs). Writes while
 * connecting are queued and sent after 'connect'. Failures at run time
 * reach cb (and 'error' where Node emits one): write after end() gives
 * ERR_STREAM_WRITE_AFTER_END, write after destroy ERR_STREAM_DESTROYED
 * (callback only). */
CNET_EXTERN int cnet_socket_write(cnet_socket_t *s, const void *data,
                                  size_t len, cnet_write_cb cb, void *ctx);

/* Zero-copy write: cnet keeps a pointer to data and calls
 * release(data, len, release_ctx) exactly once when done with it -- after
 * cb, also on error or destroy. release NULL means the bytes outlive the
 * socket (a literal, a static table). A negative return means nothing was
 * taken and release is not called. Otherwise as cnet_socket_write. */
CNET_EXTERN int cnet_socket_write_owned(cnet_socket_t *s, void *data,
                                        size_t len, cnet_release_fn release,
                                        void *release_ctx, cnet_write_cb cb,
                                        void *ctx);

/* socket.write(string, encoding[, callback]): text (UTF-8, NUL-terminated)
 * encoded as Node encodes a string (cnet_encode); encoding NULL is utf8.
 * ERR_UNKNOWN_ENCODING at once for a name Node does not know. Otherwise
 * as cnet_socket_write (bytes_written counts the encoded bytes). */
CNET_EXTERN int cnet_socket_write_string(cnet_socket_t *s, const char *str,
                                         const char *encoding,
                                         cnet_write_cb cb, void *ctx);

/* socket.cork() / socket.uncork(): while corked, writes are only queued
 * (and so return 0); the last uncork sends everything queued in one
 * multi-buffer write. Nested corks need as many uncorks, as in Node; end()
 * uncorks. */
CNET_EXTERN void cnet_socket_cork(cnet_socket_t *s);
CNET_EXTERN void cnet_socket_uncork(cnet_socket_t *s);

/* socket.end([data][, callback]) -- write data (may be NULL/0), then send
 * FIN once everything queued is out; 'finish' follows. cb (may be NULL) runs
 * just before the 'finish' listeners, or with the error if the socket is
 * destroyed first. Ending twice is harmless. Returns 0 or a negative code
 * as cnet_socket_write. */
CNET_EXTERN int cnet_socket_end(cnet_socket_t *s, const void *data,
                                size_t len, cnet_write_cb cb, void *ctx);

/* socket.destroy([error]) -- close now, dropping queued writes. Their
 * callbacks run in order: ECANCELED for the data already handed to libuv,
 * then *err for the rest (ERR_STREAM_DESTROYED without err, as Node). With
 * err, 'error' (a copy of *err) is emitted first; then 'close' with
 * had_error. Idempotent; safe from any listener. */
CNET_EXTERN void cnet_socket_destroy(cnet_socket_t *s, const cnet_error_t *err);

/* socket.resetAndDestroy(): close a TCP connection with RST (the peer sees
 * ECONNRESET); locally 'close' without error. While connecting it waits
 * for the connection, then resets. Returns 0; ERR_INVALID_HANDLE_TYPE at
 * once for IPC; with no connection at all, 'error' ERR_SOCKET_CLOSED. */
CNET_EXTERN int cnet_socket_reset_and_destroy(cnet_socket_t *s);

/* Give back a socket you own (cnet_socket_new): destroys it if open. Its
 * 'close' listeners still run; the memory goes after them. On a socket cnet
 * owns it only destroys it: a retain is given back by
 * cnet_socket_release(), never by free. NULL: nothing. */
CNET_EXTERN void cnet_socket_free(cnet_socket_t *s);
/* Keep a cnet-owned socket (accepted, create_connection) past its 'close';
 * each retain is matched by one cnet_socket_release(). */
CNET_EXTERN void cnet_socket_retain(cnet_socket_t *s);
CNET_EXTERN void cnet_socket_release(cnet_socket_t *s);

/* socket.pause() / socket.resume() / socket.isPaused(). A paused socket reads
 * nothing: the kernel's receive window pushes back on the peer. Adding the
 * first 'data' listener resumes a socket that was never paused, as Node. */
CNET_EXTERN void cnet_socket_pause(cnet_socket_t *s);
CNET_EXTERN void cnet_socket_resume(cnet_socket_t *s);
CNET_EXTERN bool cnet_socket_is_paused(const cnet_socket_t *s);

/* readable.setEncoding(encoding): from now on 'data' carries text -- UTF-8,
 * with a NUL after ev->data.len bytes -- decoded as Node's StringDecoder
 * does (never a character split across events; what is left at the peer's
 * FIN comes in one last 'data' before 'end'). NULL is utf8. Returns 0 or
 * ERR_UNKNOWN_ENCODING at once. */
CNET_EXTERN int cnet_socket_set_encoding(cnet_socket_t *s,
                                         const char *encoding);

/* The onread option for a socket that exists already (an accepted one:
 * call it in 'connection'). NULL goes back to 'data' events. Returns 0,
 * UV_EINVAL (NULL socket) or ERR_INVALID_ARG_VALUE. */
CNET_EXTERN int cnet_socket_set_onread(cnet_socket_t *s,
                                       const cnet_onread_t *onread);

/* socket.setTimeout(msecs[, callback]): 'timeout' once after msecs of
 * inactivity -- nothing read, nothing written, no write progress -- and
 * again only after new activity. It only notifies: end or destroy the
 * socket yourself. 0 turns it off (and removes `listener`, as Node).
 * listener (may be NULL) is added with once('timeout'). A period above
 * 2^31-1 ms is clamped to it, as Node (cnet_socket_timeout still reads
 * the value given). Returns 0, or ERR_OUT_OF_RANGE for a
 * negative msecs. The timer never keeps the loop alive. No-op after
 * destroy. */
CNET_EXTERN int cnet_socket_set_timeout(cnet_socket_t *s, int64_t msecs,
                                        cnet_socket_listener listener,
                                        void *ctx);
/* socket.timeout: the last msecs given to set_timeout (0: none). */
CNET_EXTERN uint64_t cnet_socket_timeout(const cnet_socket_t *s);

/* readable.pipe(destination[, options]). */
typedef struct cnet_pipe_options_s {
  bool no_end; /* Node's {end: false}: do not end dst when src ends */
} cnet_pipe_options_t;

/* src.pipe(dst): everything read from src is written to dst. When a write
 * to dst queues, src pauses until dst's 'drain'; and while piped, src
 * reads at most dst's high-water mark at a time, so dst's queue stays
 * within about one high-water mark (16 KiB unless the option says other)
 * whatever the sizes. dst is ended on src's 'end' unless opts->no_end. src == dst is allowed (the echo server). Returns 0,
 * UV_ENOMEM, or UV_EINVAL. The pipe goes away when either side closes. */
CNET_EXTERN int cnet_socket_pipe(cnet_socket_t *src, cnet_socket_t *dst,
                                 const cnet_pipe_options_t *opts);
/* readable.unpipe([destination]); dst NULL removes every pipe from src. */
CNET_EXTERN int cnet_socket_unpipe(cnet_socket_t *src, cnet_socket_t *dst);

/* socket.setNoDelay([noDelay]) / socket.setKeepAlive([enable][,
 * initialDelay]) -- remembered and applied when the connection exists. */
CNET_EXTERN void cnet_socket_set_no_delay(cnet_socket_t *s, bool no_delay);
CNET_EXTERN void cnet_socket_set_keep_alive(cnet_socket_t *s, bool enable,
                                            unsigned initial_delay_ms);

/* socket.ref() / socket.unref(): whether the socket keeps the loop alive. */
CNET_EXTERN void cnet_socket_ref(cnet_socket_t *s);
CNET_EXTERN void cnet_socket_unref(cnet_socket_t *s);

/* Properties. */
CNET_EXTERN bool cnet_socket_connecting(const cnet_socket_t *s);
CNET_EXTERN bool cnet_socket_pending(const cnet_socket_t *s);
CNET_EXTERN bool cnet_socket_destroyed(const cnet_socket_t *s);
/* "opening", "open", "readOnly", "writeOnly" or "closed" */
CNET_EXTERN const char *cnet_socket_ready_state(const cnet_socket_t *s);
CNET_EXTERN uint64_t cnet_socket_bytes_read(const cnet_socket_t *s);
/* Bytes given to write()/end(), queued ones included (Node's count). */
CNET_EXTERN uint64_t cnet_socket_bytes_written(const cnet_socket_t *s);
/* Bytes queued in user memory, not yet handed to the kernel. */
CNET_EXTERN size_t cnet_socket_writable_length(const cnet_socket_t *s);
/* socket.bufferSize: the same (Node deprecated the name). */
CNET_EXTERN size_t cnet_socket_buffer_size(const cnet_socket_t *s);
/* ---- Channels: messages and descriptors between processes -------------
 *
 * What child_process's send(message, handle) does, for C: a channel is an
 * IPC socket (a Unix socket: socketpair() to a child, wrapped with the
 * socket option channel, or a connect / accept with the channel option)
 * that carries messages -- byte strings -- and, with a message, a
 * connected socket or a listening server. The other end gets
 * CNET_EV_MESSAGE with the bytes and a ready-to-use object. A channel
 * emits no 'data'; cnet_socket_write() on it is ERR_INVALID_ARG_VALUE.
 *
 * Ownership: a descriptor sent stays the sender's until the receiver says
 * it has made it an object (the ack below); then the sender's copy is
 * closed -- the socket destroyed quietly, the server closed -- unless
 * keep_open, and cb runs. If the channel closes first, cb gets
 * ERR_IPC_CHANNEL_CLOSED and the sender still owns what it sent. So every
 * descriptor has one owner at every moment. A socket is sent paused (this
 * process reads no more of it); bytes it had already read are not sent:
 * hand sockets over before reading them (server option
 * pause_on_connect).
 *
 * Wire protocol (cnet's own; both ends must be cnet): frames of an 8-byte
 * header and a payload.
 *   bytes 0-1  'c' 'N'
 *   byte  2    kind: 0 message, 1 message + socket, 2 message + server,
 *              3 ack
 *   byte  3    0 (reserved)
 *   bytes 4-7  payload length, big-endian, at most CNET_CHANNEL_MAX
 * A frame of kind 1 or 2 carries one descriptor (SCM_RIGHTS, libuv's
 * uv_write2) with its first byte; the receiver answers each with an ack
 * (kind 3, length 0), in order. A malformed frame is a read EPROTO
 * 'error' on the receiving channel. */
#define CNET_CHANNEL_MAX (64u << 20)

typedef struct cnet_send_options_s {
  bool keep_open; /* keep the sender's copy of the socket/server */
} cnet_send_options_t;

/* err NULL once the message was written (and, with a descriptor, taken by
 * the other end), else why not. Never called inside the send call; always
 * before any message the other end sent after taking it. */
typedef void (*cnet_send_cb)(cnet_socket_t *channel, const cnet_error_t *err,
                             void *ctx);

/* Send len bytes (copied) on a channel. 0, or at once: UV_EINVAL (not a
 * channel, NULL), UV_EMSGSIZE (len > CNET_CHANNEL_MAX),
 * ERR_IPC_CHANNEL_CLOSED (not connected, ended or destroyed). opts, cb
 * may be NULL. */
CNET_EXTERN int cnet_socket_send(cnet_socket_t *channel, const void *data,
                                 size_t len, const cnet_send_options_t *opts,
                                 cnet_send_cb cb, void *ctx);
/* ... with a connected socket (TCP or IPC): also ERR_INVALID_HANDLE_TYPE
 * at once for a socket with no connection, or a channel itself. */
CNET_EXTERN int cnet_socket_send_socket(cnet_socket_t *channel,
                                        const void *data, size_t len,
                                        cnet_socket_t *socket,
                                        const cnet_send_options_t *opts,
                                        cnet_send_cb cb, void *ctx);
/* ... with a listening server: the receiver's server accepts on the same
 * listening socket (the kernel gives each connection to one process).
 * ERR_SERVER_NOT_RUNNING at once when srv is not listening. */
CNET_EXTERN int cnet_socket_send_server(cnet_socket_t *channel,
                                        const void *data, size_t len,
                                        cnet_server_t *server,
                                        const cnet_send_options_t *opts,
                                        cnet_send_cb cb, void *ctx);

/* socket.autoSelectFamilyAttemptedAddresses[i]: "ip:port" of the i-th
 * attempt of the last connect that autoselected among several addresses
 * (after success the last one is the peer); NULL past the end, and always
 * when no autoselection happened (Node: undefined). Valid until the next
 * connect() or the socket is freed. */
CNET_EXTERN const char *cnet_socket_attempted_address(const cnet_socket_t *s,
                                                      size_t i);
/* The error of attempt i (AggregateError's errors[i] when all failed);
 * NULL if that attempt has not failed. */
CNET_EXTERN const cnet_error_t *cnet_socket_attempt_error(
    const cnet_socket_t *s, size_t i);
/* The server that accepted this socket, or NULL. */
CNET_EXTERN cnet_server_t *cnet_socket_server(const cnet_socket_t *s);

/* socket.address() -- the local end. 0, or UV_ENOTCONN when not connected. */
CNET_EXTERN int cnet_socket_address(const cnet_socket_t *s,
                                    cnet_address_t *out);
/* socket.remoteAddress / remotePort / remoteFamily in one call. The value
 * is kept from connect time, so it is still there after 'close'. 0, or
 * UV_ENOTCONN when never connected (Node: undefined). */
CNET_EXTERN int cnet_socket_remote_address(const cnet_socket_t *s,
                                           cnet_address_t *out);

CNET_EXTERN void cnet_socket_set_data(cnet_socket_t *s, void *data);
CNET_EXTERN void *cnet_socket_get_data(const cnet_socket_t *s);
CNET_EXTERN uv_loop_t *cnet_socket_loop(const cnet_socket_t *s);

#ifdef __cplusplus
}
#endif

#endif /* CNET_H */
