// The Barbican configurations and key stores: creation, credential and settings
// changes, deletion and the reachability check. Every function takes the table
// connection of the calling thread (the control worker's) and returns the table's or
// Barbican's error codes (engine/status.h).
#pragma once

#include <optional>
#include <string>

#include "daemon/service/external_key_source.h"
#include "daemon/service/key_service.h"
#include "daemon/table/key_store_table.h"
#include "daemon/table/rdb.h"
#include "engine/secure_memory.h"
#include "engine/status.h"

namespace svmkey::daemon {

Status CreateBarbicanConfig(table::Rdb& rdb, const table::NewBarbicanConfig& config,
                            const SecureBuffer& secret,
                            const std::optional<SecureBuffer>& proxy_password);

// Authenticates with the new credential before it replaces the old one: ConfigNotFound,
// HealthCheckFailed, or the table's errors.
Status UpdateBarbicanCredentials(table::Rdb& rdb, KeyService& keys, const Uuid& config,
                                 const std::string& cred_id, const SecureBuffer& secret);

Status UpdateBarbicanSettings(table::Rdb& rdb, KeyService& keys, const Uuid& config,
                              const table::BarbicanSettingsPatch& patch,
                              const std::optional<SecureBuffer>& proxy_password);

Status DeleteKeyStore(table::Rdb& rdb, KeyService& keys, const Uuid& config);

// Never fails as a call: an unusable configuration is reported in the result.
KeyReachability CheckReachability(table::Rdb& rdb, KeyService& keys, const Uuid& config);

}  // namespace svmkey::daemon
