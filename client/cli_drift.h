/*
 * cli_drift.h — `anchorage drift` (client/cli_drift.c). Private to the CLI;
 * kept out of cli.h so the drift command can be added without touching
 * the other commands' header.
 */
#ifndef ANC_CLI_DRIFT_H
#define ANC_CLI_DRIFT_H

#include "cli.h"

/* anchorage drift COLLECTION [--contract ID|NAME@REV] [--fresh] [--json] */
int anc_cli_cmd_drift(anc_cli_ctx *ctx, int argc, char **argv,
                      anc_error *err);

/* The report as a JSON object (new reference; NULL on ENOMEM). */
json_t *anc_cli_drift_json(const anc_drift_report *r);

/* The report for people: a verdict line, then one line per statistic. */
void anc_cli_drift_print(FILE *fp, const anc_drift_report *r);

#endif /* ANC_CLI_DRIFT_H */
