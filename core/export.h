/* export.h - the registry written out as an import file (`hifadhi-core export`).
 *
 * For partners who need a copy, for moving a district to another instance, and as the other half of
 * the import's round trip: the output has exactly import.h's header and format, and imports cleanly
 * into an empty database (same households, members, places, addresses and personal data; new
 * hh_no/ben_no numbers are drawn there).
 * - household_ref is the household's ext_ref, or its hh_no when it was registered through the API.
 * - member_no comes from the individual's ext_ref ("<household_ref>/<n>"); individuals without one get
 *   the lowest free numbers, in the order they were registered.
 * - region/district/village/address are written on every row of the household.
 * - programme: the first code (alphabetically) among the programmes the individual is enrolled in with
 *   status pending or enrolled; on the head row, the household's enrolments count too. The format has
 *   one programme per row, so further enrolments are not carried by an export.
 * Individuals without a household cannot be written in this format; they are counted in the log.
 * The output holds personal data in clear: the caller decides where it goes.
 */
#ifndef HF_CORE_EXPORT_H
#define HF_CORE_EXPORT_H

#include <stdio.h>

#include "hf_base.h"
#include "hf_err.h"
#include "db.h"

/* Writes every household under location_prefix ("Region", "Region/District" or a full village path;
 * NULL or "" = all) to out, streaming: memory stays constant whatever the registry's size. Uses
 * g_app.keys. HF_EINTERNAL when a sealed value fails to open (logged with the row id), HF_EIO when out
 * cannot be written, a database error as is; out may then hold part of the file. */
HF_MUST_CHECK hf_err export_run(struct db *db, FILE *out, const char *location_prefix);

#endif
