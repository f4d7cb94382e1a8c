// Discovery: the members a source reports (Patroni's REST API, a file of targets), and how one
// source's set changes from round to round. Sources only report; MemberSet decides what was added
// and removed, so that a member that stays keeps its identity (its name) from round to round, and
// a member missing for a round or two, or a source that failed, removes nothing.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ghostwatch::discovery {

struct Member {
  std::string name;  // a label value (label_value())
  std::string host;
  // Where the source found it, when that differs from `host` (an SRV target's address, as the
  // source's DNS server resolved the name); "" = the host itself.
  std::string address;
  int port = 0;
  std::string role;  // as the source says it: leader, replica, sync_standby, standby_leader; "" unknown
  // Whether it may join now (Patroni: running or streaming). A member already in the set stays
  // while it is listed, whatever its state: an outage is not a removal.
  bool eligible = true;
};

// `raw` as a label value: letters, digits, '_', '-', '.' and ':' kept, anything else '_', at
// most 64 characters; never empty.
std::string label_value(std::string_view raw);

// Patroni's GET /cluster: every member, the leader included, named by its member name.
Result<std::vector<Member>> parse_patroni_cluster(std::string_view json);

// The file source: a YAML (or JSON) list of {name, host, port}. An error names the item and key.
Result<std::vector<Member>> parse_member_file(std::string_view text);

// Member names are unique after label_value(): an error names both members that collide.
Status unique_names(const std::vector<Member>& members);

// A member's DSN from the probe's `dsn_template`: {host}, {address}, {port} and {name} replaced
// (an IPv6 host in brackets inside a mysql:// URI). An unknown {placeholder} is an error naming
// it.
Result<std::string> render_dsn(std::string_view dsn_template, const Member& member);

// The writer's DSN for a cluster led by `leader`: libpq's multi-host form, the leader first and
// then `others`, with target_session_attrs=read-write (unless the template sets it), so that the
// writer finds a new leader at its next connect even before discovery has seen the switchover.
// A URI template names the leader alone.
Result<std::string> render_writer_dsn(std::string_view dsn_template, const Member& leader,
                                      const std::vector<Member>& others);

// One source's members, round by round.
class MemberSet {
 public:
  // A member missing from `remove_after` rounds in a row leaves the set (at least 1).
  explicit MemberSet(int remove_after);

  struct Changes {
    std::vector<Member> added;
    std::vector<Member> changed;  // same name, another host, port or role
    std::vector<std::string> removed;
  };
  // A round whose source answered with `listed` (names unique). A source that failed has no
  // round: the set stays as it was.
  Changes round(const std::vector<Member>& listed);
  std::vector<Member> members() const;

 private:
  struct Known {
    Member member;
    int missing = 0;  // rounds in a row
  };
  int remove_after_;
  std::map<std::string, Known> known_;
};

}  // namespace ghostwatch::discovery
