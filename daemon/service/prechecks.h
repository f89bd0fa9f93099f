// Checks that refuse an operation before it changes anything (docs/ARCHITECTURE.md §8),
// written once for every caller: bus handlers and the job bodies that run them again
// when a job resumes. No side effects; each takes the caller's own table connection.
#pragma once

#include "daemon/table/key_store_table.h"
#include "daemon/table/rdb.h"
#include "daemon/table/states.h"
#include "engine/status.h"
#include "engine/uuid.h"

namespace svmkey::daemon {

// The SVM's enabled key store. Errors: NoKeyManagerConfigured (65539836) when the SVM
// has none; table errors.
Result<table::KeyStoreRow> EnabledKeyStore(table::Rdb& rdb, const Uuid& svm);

// The ONTAP code that refuses an operation needing an active key store, for a key store
// in `state`: Ok for active; KeystoreSwitching, KeystoreInitializing, KeystoreDisabling,
// KeyManagerBlocked; ResourceInUse (8) for svm_kek_rekey (a rekey is running).
ErrorCode KeyStoreStateCode(table::KeyStoreState state);

// Ok when `ks` is active, else a Status with KeyStoreStateCode(ks.state).
Status RequireActiveKeyStore(const table::KeyStoreRow& ks);

// The prechecks of rekey-internal: EntryNotFound (4, no such configuration),
// NoKeyManagerConfigured (no enabled key store), BarbicanNotConfigured (`config` is not
// the enabled one), the key store state codes above, KeysInAdminSvm (volume keys held by
// the admin SVM's key manager), NoInternalKeys (no SVM-KEK yet). `resuming` accepts
// svm_kek_rekey (the job's own state). Sets `*svm` to the configuration's SVM once known.
Status RekeyPrechecks(table::Rdb& rdb, const Uuid& config, bool resuming, Uuid* svm);

}  // namespace svmkey::daemon
