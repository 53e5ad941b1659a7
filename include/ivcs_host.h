/*
 * ivcs_host.h - libivcs settings that the original SDK took from its system
 * module: cloud URL, device id and secret, engine file, trusted CA, logging;
 * and live engine updates (ivcs_host_set_engine_keys, ivcs_host_engine_update).
 *
 * All optional. A value not set here comes from the environment
 * (IVCS_CLOUD_URL, IVCS_DEVICE_ID, IVCS_DEVICE_SECRET, IVCS_ENGINE,
 * IVCS_CA_FILE, IVCS_LOG_LEVEL) or from the key = value file named by
 * IVCS_CONFIG, so firmware that never calls these works unchanged.
 * See docs/guide/firmware.md.
 *
 * Call the setters before the first iv_cs_* call. Afterwards the cloud URL,
 * device id/secret and CA file still apply while cloud storage is not
 * initialised (IV_ERR_CS_INIT_REPEAT during a session); the engine file
 * needs ivcs_host_shutdown() first. A NULL string clears the value (back to
 * environment and file). Every function returns an iv_err_code_e.
 */
#ifndef IVCS_HOST_H
#define IVCS_HOST_H

#include "iv_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Log levels, most severe first. The default is IVCS_LOG_WARN. */
#define IVCS_LOG_ERROR 0
#define IVCS_LOG_WARN 1
#define IVCS_LOG_INFO 2
#define IVCS_LOG_DEBUG 3
#define IVCS_LOG_TRACE 4

/*
 * Receives one log line (no trailing newline) on the library's callback
 * thread; the string is valid until it returns. It may call iv_cs_*.
 */
typedef void (*ivcs_host_log_cb)(int level, const char *message, void *user);

/* "https://host[:port][/prefix]" of the ivcs cloud. */
int ivcs_host_set_cloud_url(const char *url);
/* The device id registered in the cloud. */
int ivcs_host_set_device_id(const char *device_id);
/* The device secret ("ivcs cloud device add" prints it). */
int ivcs_host_set_device_secret(const char *secret);
/*
 * A precompiled engine (.cwasm from "ivcs engine compile") to run
 * instead of the one built into the library, or a signed artifact
 * ("ivcs engine compile --sign", checked against the engine keys: set them
 * first). ivcs_host_engine_update writes updates to this file and keeps
 * the one before as PATH.last-good, which is started if PATH fails to load.
 */
int ivcs_host_set_engine_file(const char *path);
/*
 * The public keys engine updates must be signed with: a file of one or
 * more "ivcs engine keygen" .pub files concatenated. Without keys every
 * update is refused. NULL forgets them. May be called at any time; an
 * unreadable file or one without a key is IV_ERR_CS_INIT_PRM_RANGE and
 * keeps the keys set before. Setting keys also turns on updates delivered
 * by the cloud: an engine the cloud offers is downloaded on a library
 * thread (pushes go on), checked and swapped to exactly as by
 * ivcs_host_engine_update, and the outcome reported to the cloud.
 */
int ivcs_host_set_engine_keys(const char *path);
/*
 * Replaces the running engine with the signed artifact at PATH, live: the
 * artifact is verified (trusted key, signature, payload hash, contract,
 * target, wasmtime build) and loaded on the calling thread while the old
 * engine serves; then, between two engine calls, the old engine's state is
 * exported and imported into the new one, which serves every later call.
 * Frames pushed meanwhile wait and go to the new engine; pushes are not
 * refused because of the swap. The open segment is cut: its bytes are
 * re-reported as a failed upload slice (backed up from the dump as after
 * an engine restart) and recording resumes at the next IDR. With an
 * engine file set, the artifact is then written there atomically (the
 * previous one kept as PATH.last-good). If the new engine traps 3 times
 * in its first 120 s, the previous one is restored (log, and on disk).
 *
 * Blocks until the new engine serves: 0. Otherwise nothing changed and the
 * running engine goes on: IV_ERR_CS_INIT_PRM_NULL (NULL path),
 * IV_ERR_CS_UPLOAD_OPEN_FILE_FAIL (unreadable file), IV_ERR_CS_INIT_PRM_RANGE
 * (refused: malformed, not signed by a trusted key or no keys set,
 * tampered, or not for this host), IV_ERR_CS_PRM_NOT_AVAILABLE (it does
 * not load, or cannot take over the running engine's state),
 * IV_ERR_CS_PRM_MALLOC_FAIL (no memory for it), IV_ERR_CS_QUERY_SERVICE_TIMEOUT
 * (the engine thread did not get to it), IV_ERR_CS_INIT_REPEAT (from a
 * callback, or during another update). The log says why.
 */
int ivcs_host_engine_update(const char *path);
/*
 * PEM file with extra CA certificates to trust (e.g. a self-hosted cloud's
 * own CA), in addition to the built-in public roots. Certificate
 * verification cannot be turned off.
 */
int ivcs_host_set_ca_file(const char *path);
/* IVCS_LOG_ERROR .. IVCS_LOG_TRACE; others are IV_ERR_CS_INIT_PRM_RANGE. */
int ivcs_host_set_log_level(int level);
/* NULL: log to stderr (the default). */
int ivcs_host_set_log_callback(ivcs_host_log_cb cb, void *user);
/*
 * Ends cloud storage if initialised, stops the library's threads and frees
 * the engine; the next iv_cs_* call starts afresh. Optional (process exit
 * is fine); useful before unloading the library or for leak checkers.
 * Not from a callback (IV_ERR_CS_INIT_REPEAT).
 */
int ivcs_host_shutdown(void);
/* The library version, e.g. "0.1.0" (static storage). */
const char *ivcs_host_version(void);

#ifdef __cplusplus
}
#endif

#endif /* IVCS_HOST_H */
