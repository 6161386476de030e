/*
 * cli_ground.h — `anchorage verify` and `anchorage receipt show|replay`
 * (client/cli_ground.c, issue 8). Private to the CLI; kept out of cli.h
 * like cli_drift.h so these commands can be added without touching the
 * other commands' header.
 */
#ifndef ANC_CLI_GROUND_H
#define ANC_CLI_GROUND_H

#include "cli.h"

/* anchorage verify COLLECTION [--contract ID] --claims FILE.jsonl
 *                  [--vectors FILE.fvecs] [--receipt] */
int anc_cli_cmd_verify(anc_cli_ctx *ctx, int argc, char **argv,
                       anc_error *err);

/* anchorage receipt show ID [--text] | receipt replay ID */
int anc_cli_cmd_receipt(anc_cli_ctx *ctx, int argc, char **argv,
                        anc_error *err);

/* The provenance as a JSON object, with "receipt" when one was made (new
 * reference; NULL on ENOMEM). */
json_t *anc_cli_prov_json(const anc_provenance *p);

/* The calibration as a JSON object, or JSON null when never computed. */
json_t *anc_cli_calib_json(const anc_calibration *c);

/* One line for people: "weak >= 0.5815, strong >= 0.7163 (cosine; 90
 * vectors sampled, 2026-01-01T00:00:00Z)" or "not calibrated yet". */
void anc_cli_calib_line(const anc_calibration *c, char *buf, size_t len);

#endif /* ANC_CLI_GROUND_H */
