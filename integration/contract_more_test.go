package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// More contract checks, in the manner of contract_test.go: each mirror
// declares the fields one of the reference's clients declares or reads,
// with its names and Go types, and decodeContract fails on a type mismatch
// or on a declared field the reply lacks. A field is marked omitempty here
// only where the client itself does, or where the reference controller
// sends it for some objects only (its example replies in s9s-tools'
// tests/request-examples show which); the comment says which. The table
// in contract_test.go lists what each test here checks.

// proxyNullTime is cmon-proxy's api.NullTime (cmon/api/null_time.go): "",
// "null", null or a time.
type proxyNullTime struct{ T time.Time }

func (nt *proxyNullTime) UnmarshalJSON(b []byte) error {
	if len(b) < 1 || string(b) == `""` || string(b) == `"null"` || string(b) == "null" {
		nt.T = time.Time{}
		return nil
	}
	if err := json.Unmarshal(b, &nt.T); err != nil {
		return fmt.Errorf("failed to parse date: %s", err.Error())
	}
	return nil
}

// proxyCmonInt is cmon-proxy's api.CmonInt (cmon/api/cmon_int.go): a number,
// or a string holding one.
type proxyCmonInt int64

func (ci *proxyCmonInt) UnmarshalJSON(b []byte) error {
	if b[0] != '"' {
		return json.Unmarshal(b, (*int64)(ci))
	}
	if b[1] == '"' {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	i, err := strconv.Atoi(strings.Trim(s, "\r\n\t '\""))
	if err != nil {
		return err
	}
	*ci = proxyCmonInt(i)
	return nil
}

// proxyGroup is cmon-proxy's api.Group (cmon/api/group.go).
type proxyGroup struct {
	ClassName string `json:"class_name"`
	GroupID   uint64 `json:"group_id"`
	GroupName string `json:"group_name"`
}

// proxyUser is cmon-proxy's api.User (cmon/api/user.go). Its inline
// WithControllerID is cmon-proxy's own bookkeeping in its multi-controller
// views, and the reference leaves first_name, last_name, email_address and
// last_login out of a user that has none (its getUsers example), so those
// are optional here.
type proxyUser struct {
	Xid          string        `json:"xid,omitempty"`
	ControllerID string        `json:"controller_id,omitempty"`
	ClassName    string        `json:"class_name"`
	FirstName    string        `json:"first_name,omitempty"`
	LastName     string        `json:"last_name,omitempty"`
	UserName     string        `json:"user_name"`
	EmailAddress string        `json:"email_address,omitempty"`
	Origin       string        `json:"origin"`
	UserID       uint64        `json:"user_id"`
	LastLogin    proxyNullTime `json:"last_login,omitempty"`
	Groups       []*proxyGroup `json:"groups"`
}

// proxyAuthenticateResponse is cmon-proxy's api.AuthenticateResponse
// (cmon/api/auth.go), which it decodes authenticateWithPassword's and
// whoAmI's replies into; xid is its own, and challenge only authenticate's.
type proxyAuthenticateResponse struct {
	Xid              string        `json:"xid,omitempty"`
	ControllerID     string        `json:"controller_id"`
	RequestID        uint64        `json:"request_id,omitempty"`
	RequestCreated   proxyNullTime `json:"request_created,omitempty"`
	RequestProcessed proxyNullTime `json:"request_processed,omitempty"`
	RequestStatus    string        `json:"request_status,omitempty"`
	ErrorString      string        `json:"error_string,omitempty"`
	Challenge        string        `json:"challenge,omitempty"`
	User             *proxyUser    `json:"user"`
}

// proxyProviderWhoAmI is the reply type cmon-proxy's cmon auth provider
// (auth/providers/cmon/cmon_provider.go) decodes whoAmI into: the groups
// become the user's roles.
type proxyProviderWhoAmI struct {
	User struct {
		UserName string `json:"user_name"`
		Groups   []struct {
			GroupName string `json:"group_name"`
		} `json:"groups"`
	} `json:"user"`
}

// s9sGroupName is what s9s's S9sUser::groupNames reads of a user's groups
// (libs9s/s9suser.cpp).
type s9sGroupName struct {
	GroupName string `json:"group_name"`
}

// s9sUser is what s9s's S9sUser (libs9s/s9suser.cpp) and its base
// S9sObject (libs9s/s9sobject.cpp) read for user --list --long, --stat,
// --whoami and --user-format. The name parts, e-mail address and login
// data the reference sends only when set, tags only for a tagged user.
type s9sUser struct {
	ClassName         string         `json:"class_name"`
	CdtPath           string         `json:"cdt_path"`
	UserID            int            `json:"user_id"`
	UserName          string         `json:"user_name"`
	Title             string         `json:"title,omitempty"`
	FirstName         string         `json:"first_name,omitempty"`
	MiddleName        string         `json:"middle_name,omitempty"`
	LastName          string         `json:"last_name,omitempty"`
	JobTitle          string         `json:"job_title,omitempty"`
	EmailAddress      string         `json:"email_address,omitempty"`
	DistinguishedName string         `json:"distinguished_name,omitempty"`
	Origin            string         `json:"origin"`
	Disabled          bool           `json:"disabled"`
	Suspended         bool           `json:"suspended"`
	Created           string         `json:"created"`
	LastLogin         string         `json:"last_login,omitempty"`
	LastFailedLogin   string         `json:"last_failed_login,omitempty"`
	NFailedLogins     int            `json:"n_failed_logins,omitempty"`
	Groups            []s9sGroupName `json:"groups"`
	OwnerUserName     string         `json:"owner_user_name"`
	OwnerGroupName    string         `json:"owner_group_name"`
	ACL               string         `json:"acl"`
	Tags              []string       `json:"tags,omitempty"`
}

// s9sUserList is what S9sRpcReply::printUserList* reads of getUsers and,
// through S9sRpcReply::users(), of whoAmI: the list or the one user, and
// request_user_id, the only user --whoami prints.
type s9sUserList struct {
	RequestUserID int       `json:"request_user_id"`
	Total         int       `json:"total,omitempty"` // getUsers only
	Users         []s9sUser `json:"users,omitempty"` // getUsers
	User          *s9sUser  `json:"user,omitempty"`  // whoAmI
}

// s9sGroup is what s9s's S9sGroup (libs9s/s9sgroup.cpp) and S9sObject
// (libs9s/s9sobject.cpp) read for group --list --long
// (S9sRpcReply::printGroupListLong): the ID, OWNER, GOWNER and NAME
// columns.
type s9sGroup struct {
	GroupID        int    `json:"group_id"`
	GroupName      string `json:"group_name"`
	OwnerUserName  string `json:"owner_user_name"`
	OwnerGroupName string `json:"owner_group_name"`
}

type s9sGroupList struct {
	Total  int        `json:"total"`
	Groups []s9sGroup `json:"groups"`
}

// s9sKeys is what S9sRpcReply::printKeys reads (s9s user --list-keys).
type s9sKeys struct {
	Total      int `json:"total"`
	PublicKeys []struct {
		Name string `json:"name"`
		Key  string `json:"key"`
	} `json:"public_keys"`
}

// TestUsersAsTheReferenceClientsReadThem: the user and group listings, the
// logged-in user and the keys, as cmon-proxy and s9s decode them.
func TestUsersAsTheReferenceClientsReadThem(t *testing.T) {
	c := startController(t, controllerOptions{})
	c.createUser(t, "bob", "bob-password-1", "ops")
	admin := c.session(t, "admin", adminPassword)

	t.Run("cmon-proxy logs in and asks whoAmI", func(t *testing.T) {
		login := decodeContract[proxyAuthenticateResponse](t, mustOk(t, c.login(t, "bob", "bob-password-1", jar(t))).Raw)
		bob := c.session(t, "bob", "bob-password-1")
		cookie := decodeContract[proxyAuthenticateResponse](t, mustOk(t, bob.call(t, "users", `{"operation":"whoAmI"}`)).Raw)
		for name, r := range map[string]proxyAuthenticateResponse{"authenticateWithPassword": login, "whoAmI": cookie} {
			u := r.User
			if r.ControllerID == "" || u == nil || u.UserName != "bob" || u.UserID == 0 || u.ClassName != "CmonUser" || u.LastLogin.T.IsZero() ||
				len(u.Groups) != 1 || u.Groups[0].GroupName != "ops" || u.Groups[0].GroupID == 0 {
				t.Errorf("%s as cmon-proxy reads it: %+v, user %+v", name, r, u)
			}
		}
		roles := decodeContract[proxyProviderWhoAmI](t, mustOk(t, bob.call(t, "users", `{"operation":"whoAmI"}`)).Raw)
		if roles.User.UserName != "bob" || len(roles.User.Groups) != 1 || roles.User.Groups[0].GroupName != "ops" {
			t.Errorf("whoAmI as cmon-proxy's auth provider reads it: %+v", roles)
		}
	})

	t.Run("s9s user --whoami", func(t *testing.T) {
		bob := c.session(t, "bob", "bob-password-1")
		r := decodeContract[s9sUserList](t, mustOk(t, bob.call(t, "users", `{"operation":"whoAmI","with_extended_privileges":true}`)).Raw)
		// printUserList prints only the user whose id is request_user_id.
		if r.User == nil || r.User.UserName != "bob" || r.RequestUserID != r.User.UserID {
			t.Fatalf("whoAmI as s9s user --whoami reads it: request_user_id %d, user %+v", r.RequestUserID, r.User)
		}
		if len(r.User.Groups) != 1 || r.User.Groups[0].GroupName != "ops" || r.User.Origin == "" || r.User.Created == "" {
			t.Errorf("bob as s9s user --whoami --long reads him: %+v", r.User)
		}
	})

	t.Run("s9s user --list --long", func(t *testing.T) {
		r := decodeContract[s9sUserList](t, mustOk(t, admin.call(t, "users", `{"operation":"getUsers"}`)).Raw)
		byName := map[string]s9sUser{}
		for _, u := range r.Users {
			byName[u.UserName] = u
		}
		adminUser, bob := byName["admin"], byName["bob"]
		if r.Total != 2 || len(r.Users) != 2 || r.RequestUserID != adminUser.UserID || adminUser.UserID == 0 {
			t.Fatalf("getUsers as s9s reads it: total %d, request_user_id %d, users %+v", r.Total, r.RequestUserID, r.Users)
		}
		if len(bob.Groups) != 1 || bob.Groups[0].GroupName != "ops" || bob.CdtPath != "/" || bob.Disabled || bob.Suspended {
			t.Errorf("bob as s9s user --list --long reads him: %+v", bob)
		}
		// user --stat prints "Owner: user/group" and the ACL.
		for _, u := range r.Users {
			if u.OwnerUserName == "" || u.OwnerGroupName == "" || (u.ACL != "" && !s9sACL.MatchString(u.ACL)) { // a missing acl is reported above
				t.Errorf("user %s as s9s user --stat reads it: owner %q/%q, acl %q", u.UserName, u.OwnerUserName, u.OwnerGroupName, u.ACL)
			}
		}
	})

	t.Run("s9s group --list --long", func(t *testing.T) {
		r := decodeContract[s9sGroupList](t, mustOk(t, admin.call(t, "users", `{"operation":"getGroups"}`)).Raw)
		var names []string
		for _, g := range r.Groups {
			names = append(names, g.GroupName)
			// Missing owners are reported by decodeContract.
			if g.GroupID == 0 {
				t.Errorf("group %s as s9s group --list --long reads it: %+v", g.GroupName, g)
			}
		}
		if r.Total != len(r.Groups) || !slices.Contains(names, "admins") || !slices.Contains(names, "ops") {
			t.Errorf("getGroups as s9s reads it: total %d, groups %v", r.Total, names)
		}
	})

	t.Run("s9s user --add-key, --list-keys", func(t *testing.T) {
		dir := t.TempDir()
		run(t, "openssl", "genrsa", "-out", dir+"/key.pem", "2048")
		run(t, "openssl", "rsa", "-in", dir+"/key.pem", "-pubout", "-out", dir+"/pub.pem")
		pub, err := os.ReadFile(dir + "/pub.pem")
		if err != nil {
			t.Fatal(err)
		}
		bob := c.session(t, "bob", "bob-password-1")
		mustOk(t, bob.call(t, "users", fmt.Sprintf(`{"operation":"addKey","user":{"class_name":"CmonUser","user_name":"bob"},
			"public_key":{"name":"laptop","key":%q}}`, pub)))
		keys := decodeContract[s9sKeys](t, mustOk(t, bob.call(t, "users", `{"operation":"getKeys","user":{"class_name":"CmonUser","user_name":"bob"}}`)).Raw)
		if keys.Total != 1 || len(keys.PublicKeys) != 1 || keys.PublicKeys[0].Name != "laptop" ||
			!strings.Contains(keys.PublicKeys[0].Key, "PUBLIC KEY") {
			t.Errorf("getKeys as s9s user --list-keys reads it: %+v", keys)
		}
	})
}

// s9sACL is an ACL as s9s's aclStringToUiString reads one.
var s9sACL = regexp.MustCompile(`^user::[r-][w-][x-](,(user|group):[^:,]+:[r-][w-][x-])*,group::[r-][w-][x-](,(user|group):[^:,]+:[r-][w-][x-])*,other::[r-][w-][x-]$`)

// proxyDistribution is cmon-proxy's api.Distribution (cmon/api/host.go).
type proxyDistribution struct {
	Codename string `json:"codename"`
	Name     string `json:"name"`
	Release  string `json:"release"`
	Type     string `json:"type"`
}

// proxySSLCert is cmon-proxy's api.SSLCert.
type proxySSLCert struct {
	CA         string `json:"ca"`
	ID         int64  `json:"id"`
	Key        string `json:"key"`
	Path       string `json:"path"`
	SSLEnabled bool   `json:"ssl_enabled"`
}

// proxyHost is cmon-proxy's api.Host (cmon/api/host.go). The reference
// sends the fields required here for every host, its controller host too
// (s9s-tools' tests/request-examples/Ok-getClusterInfo-rep.json); those
// marked "some hosts" it sends for database hosts only.
type proxyHost struct {
	ClassName             string             `json:"class_name"`
	Acl                   string             `json:"acl"`
	CdtPath               string             `json:"cdt_path"`
	ClusterID             proxyCmonInt       `json:"clusterid"`
	Connected             bool               `json:"connected"`
	Container             bool               `json:"container"`
	Datadir               string             `json:"datadir,omitempty"` // some hosts
	Distribution          *proxyDistribution `json:"distribution"`
	HostID                uint64             `json:"hostId"`
	Hostname              string             `json:"hostname"`
	HostnameData          string             `json:"hostname_data,omitempty"`     // some hosts
	HostnameInternal      string             `json:"hostname_internal,omitempty"` // some hosts
	HostStatus            string             `json:"hoststatus"`
	IP                    string             `json:"ip"`
	LastSeen              int64              `json:"lastseen"`
	ListeningPort         proxyCmonInt       `json:"listening_port,omitempty"`   // some hosts
	LogBin                string             `json:"log_bin,omitempty"`          // some hosts
	LogBinBasename        string             `json:"log_bin_basename,omitempty"` // some hosts
	Logfile               string             `json:"logfile"`
	MaintenanceMode       string             `json:"maintenance_mode"`
	MaintenanceModeActive bool               `json:"maintenance_mode_active"`
	Message               string             `json:"message"`
	Nodetype              string             `json:"nodetype"`
	PerformanceSchema     bool               `json:"performance_schema,omitempty"` // some hosts
	Pid                   int64              `json:"pid,omitempty"`
	Pidfile               string             `json:"pidfile,omitempty"`
	Pingstatus            int                `json:"pingstatus,omitempty"`
	Pingtime              int64              `json:"pingtime,omitempty"`
	Port                  proxyCmonInt       `json:"port"`
	Readonly              bool               `json:"readonly,omitempty"` // some hosts
	ReplicationSlave      *struct {
		MasterClusterID     proxyCmonInt `json:"master_cluster_id,omitempty"`
		MasterHost          string       `json:"master_host,omitempty"`
		MasterPort          proxyCmonInt `json:"master_port,omitempty"`
		PrevMasterHost      string       `json:"prev_master_host,omitempty"`
		PrevMasterPort      proxyCmonInt `json:"prev_master_port,omitempty"`
		SecondsBehindMaster proxyCmonInt `json:"seconds_behind_master,omitempty"`
		Status              string       `json:"status,omitempty"`
		SlaveIoRunning      string       `json:"slave_io_running,omitempty"`
		SlaveSQLRunning     string       `json:"slave_sql_running,omitempty"`
	} `json:"replication_slave,omitempty"`
	Role           string       `json:"role"`
	ROPort         proxyCmonInt `json:"ro_port,omitempty"`         // some hosts
	RWPort         proxyCmonInt `json:"rw_port,omitempty"`         // some hosts
	ServiceStarted int64        `json:"service_started,omitempty"` // some hosts
	SSLCerts       *struct {
		Replication *proxySSLCert `json:"replication"`
		Server      *proxySSLCert `json:"server"`
	} `json:"ssl_certs,omitempty"` // some hosts
	StoppedAt string `json:"stopped_at,omitempty"` // some hosts
	UniqueID  uint64 `json:"unique_id"`
	Uptime    int64  `json:"uptime,omitempty"` // some hosts
	Replica   *struct {
		SynchronizationHealth string `json:"synchronization_health,omitempty"`
	} `json:"replica,omitempty"` // SQL Server hosts
	ReplicationState string `json:"replication_state,omitempty"`
}

// proxyCluster is cmon-proxy's api.Cluster (cmon/api/cluster.go); its
// api.Database fields are all omitempty.
type proxyCluster struct {
	ClassName             string            `json:"class_name"`
	ClusterID             uint64            `json:"cluster_id"`
	ClusterName           string            `json:"cluster_name"`
	ClusterType           string            `json:"cluster_type"`
	Databases             []json.RawMessage `json:"databases,omitempty"`
	Hosts                 []*proxyHost      `json:"hosts,omitempty"`
	State                 string            `json:"state"`
	MaintenanceModeActive bool              `json:"maintenance_mode_active"`
	Tags                  []string          `json:"tags,omitempty"`
	ClusterAutoRecovery   bool              `json:"cluster_auto_recovery"`
	NodeAutoRecovery      bool              `json:"node_auto_recovery"`
	Vendor                string            `json:"vendor"`
	Version               string            `json:"version"`
}

// proxyGetAllClusterInfo is cmon-proxy's api.GetAllClusterInfoResponse.
// license and license_check are a licensed controller's; cmon-proxy
// checks them for nil (multi/controllers.go).
type proxyGetAllClusterInfo struct {
	ControllerID string          `json:"controller_id"`
	Total        int64           `json:"total"`
	License      json.RawMessage `json:"license,omitempty"`
	LicenseCheck json.RawMessage `json:"license_check,omitempty"`
	Clusters     []*proxyCluster `json:"clusters"`
}

// proxyGetClusterInfo is cmon-proxy's api.GetClusterInfoResponse.
type proxyGetClusterInfo struct {
	ControllerID string        `json:"controller_id"`
	Cluster      *proxyCluster `json:"cluster"`
}

// s9sNode is what s9s's S9sNode (libs9s/s9snode.cpp) and
// S9sRpcReply::printNodeListLong read of a host for s9s node --list
// --long; the elastic, mongo and read-only fields are those hosts' own.
type s9sNode struct {
	ClassName             string `json:"class_name"`
	Hostname              string `json:"hostname"`
	IP                    string `json:"ip"`
	Port                  int    `json:"port"`
	ClusterID             int    `json:"clusterid"`
	HostID                int    `json:"hostId"`
	HostStatus            string `json:"hoststatus"`
	NodeType              string `json:"nodetype"`
	Role                  string `json:"role"`
	Message               string `json:"message"`
	Version               string `json:"version"`
	MaintenanceModeActive bool   `json:"maintenance_mode_active"`
	Alias                 string `json:"alias,omitempty"`
	Readonly              bool   `json:"readonly,omitempty"`
	ElasticRoles          string `json:"elastic_roles,omitempty"`
	MemberRole            string `json:"member_role,omitempty"`
}

// s9sNodeCluster is what printNodeListLong reads of a cluster.
type s9sNodeCluster struct {
	ClusterID   int       `json:"cluster_id"`
	ClusterName string    `json:"cluster_name"`
	Hosts       []s9sNode `json:"hosts"`
}

// proxyCountedHost is the part of cmon-proxy's api.Host that its
// multi/clusters.go reads to count a cluster's nodes and their states, and
// s9s's S9sNode for its node type and role flags.
type proxyCountedHost struct {
	Hostname   string       `json:"hostname"`
	ClusterID  proxyCmonInt `json:"clusterid"`
	HostStatus string       `json:"hoststatus"`
	Nodetype   string       `json:"nodetype"`
	Role       string       `json:"role"`
}

// proxyCountedCluster is the part of cmon-proxy's api.Cluster its
// multi/clusters.go reads to count nodes: len(hosts)-1 of each cluster.
type proxyCountedCluster struct {
	ClusterID   uint64             `json:"cluster_id"`
	ClusterName string             `json:"cluster_name"`
	Hosts       []proxyCountedHost `json:"hosts"`
}

// s9sHostStates are the host states s9s's S9sNode::stateAsChar knows.
var s9sHostStates = []string{"CmonHostUnknown", "CmonHostOnline", "CmonHostOffLine", "CmonHostFailed", "CmonHostRecovery", "CmonHostShutDown"}

// TestClusterHostsAsTheReferenceClientsReadThem: the hosts of the cluster
// listings as the reference web UI's backend and s9s node --list read them,
// the controller among them.
func TestClusterHostsAsTheReferenceClientsReadThem(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.5.1", "127.0.5.2", "127.0.5.3")
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	ids := map[string]int64{}
	for name, nodes := range map[string][]string{"h1": {"127.0.5.1", "127.0.5.2"}, "h2": {"127.0.5.3"}} {
		id, job := admin.registerCluster(t, name, sshd, nodes, nil)
		if id == 0 {
			t.Fatalf("register %s: %v", name, job)
		}
		ids[name] = id
	}
	nodesOf := func(id int64) int { // the registered nodes, the controller aside
		if id == ids["h1"] {
			return 2
		}
		return 1
	}
	// What each client sends.
	proxyAll := `{"operation":"getAllClusterInfo","with_hosts":true,"with_license_check":true,"with_tags":true}`
	s9sAll := `{"operation":"getAllClusterInfo","all_pool":false,"with_hosts":true,"with_sheet_info":true,"with_containers":false,"with_databases":false}`
	s9sOne := func(id int64) string {
		return fmt.Sprintf(`{"operation":"getClusterInfo","with_hosts":true,"cluster_id":%d}`, id)
	}

	t.Run("cmon-proxy api.Cluster and api.Host", func(t *testing.T) {
		all := decodeContract[proxyGetAllClusterInfo](t, mustOk(t, admin.call(t, "clusters", proxyAll)).Raw)
		if all.Total != 2 || len(all.Clusters) != 2 || all.ControllerID == "" {
			t.Fatalf("getAllClusterInfo as cmon-proxy reads it: %+v", all)
		}
		clusters := all.Clusters
		for _, id := range ids {
			one := decodeContract[proxyGetClusterInfo](t, mustOk(t, admin.call(t, "clusters",
				fmt.Sprintf(`{"operation":"getClusterInfo","cluster_id":%d,"with_hosts":true}`, id))).Raw)
			clusters = append(clusters, one.Cluster)
		}
		for _, cl := range clusters {
			if cl == nil || cl.ClassName != "CmonClusterInfo" || cl.ClusterType != "GALERA" || cl.State != "STARTED" || cl.Vendor != "mariadb" {
				t.Fatalf("a cluster as cmon-proxy reads it: %+v", cl)
			}
			n := 0
			for _, h := range cl.Hosts {
				if h.Nodetype == "controller" {
					continue // checked below
				}
				n++
				if h.Hostname == "" || h.IP != h.Hostname || uint64(h.ClusterID) != cl.ClusterID || h.Port != 3306 ||
					h.HostStatus != "CmonHostOnline" || !h.Connected || h.LastSeen == 0 || h.HostID == 0 || h.Distribution == nil {
					t.Errorf("cluster %s: a host as cmon-proxy reads it: %+v", cl.ClusterName, h)
				}
			}
			if n != nodesOf(int64(cl.ClusterID)) {
				t.Errorf("cluster %s: %d database hosts, want %d", cl.ClusterName, n, nodesOf(int64(cl.ClusterID)))
			}
		}
	})

	t.Run("s9s node --list --long", func(t *testing.T) {
		all := decodeContract[struct {
			Clusters []s9sNodeCluster `json:"clusters"`
		}](t, mustOk(t, admin.call(t, "clusters", s9sAll)).Raw)
		clusters := all.Clusters
		for _, id := range ids { // s9s node --list --cluster-id=N
			one := decodeContract[struct {
				Cluster s9sNodeCluster `json:"cluster"`
			}](t, mustOk(t, admin.call(t, "clusters", s9sOne(id))).Raw)
			clusters = append(clusters, one.Cluster)
		}
		if len(clusters) != 4 {
			t.Fatalf("getAllClusterInfo as s9s reads it: %+v", all)
		}
		for _, cl := range clusters {
			for _, h := range cl.Hosts {
				// The version, for the VERSION column, decodeContract requires.
				if h.Hostname == "" || h.ClusterID != cl.ClusterID || !slices.Contains(s9sHostStates, h.HostStatus) || h.Port <= 0 || h.ClassName == "" {
					t.Errorf("cluster %s: a host as s9s node --list --long prints it: %+v", cl.ClusterName, h)
				}
			}
		}
	})

	// The reference lists its controller as one host of every cluster; the
	// web UI counts a cluster's nodes as len(hosts)-1 and skips that host.
	t.Run("the controller is one host of each cluster", func(t *testing.T) {
		all := decodeContract[struct {
			Clusters []proxyCountedCluster `json:"clusters"`
		}](t, mustOk(t, admin.call(t, "clusters", proxyAll)).Raw)
		clusters := all.Clusters
		for _, id := range ids {
			one := decodeContract[struct {
				Cluster proxyCountedCluster `json:"cluster"`
			}](t, mustOk(t, admin.call(t, "clusters", s9sOne(id))).Raw)
			clusters = append(clusters, one.Cluster)
		}
		for _, cl := range clusters {
			var controllers []proxyCountedHost
			for _, h := range cl.Hosts {
				if h.Nodetype == "controller" {
					controllers = append(controllers, h)
				}
			}
			if len(controllers) != 1 {
				t.Errorf("cluster %s: %d hosts with nodetype \"controller\" among %d hosts, want exactly 1", cl.ClusterName, len(controllers), len(cl.Hosts))
				continue
			}
			if h := controllers[0]; h.Role != "controller" || uint64(h.ClusterID) != cl.ClusterID || h.HostStatus != "CmonHostOnline" {
				t.Errorf("cluster %s: the controller host %+v, want role controller, clusterid %d, CmonHostOnline", cl.ClusterName, h, cl.ClusterID)
			}
			if n := len(cl.Hosts) - 1; n != nodesOf(int64(cl.ClusterID)) {
				t.Errorf("cluster %s: the web UI counts %d nodes, want %d", cl.ClusterName, n, nodesOf(int64(cl.ClusterID)))
			}
		}
	})
}

// s9sTreeNode is what s9s's S9sTreeNode (libs9s/s9streenode.cpp) and
// S9sRpcReply's printObjectTree*, printObjectList* and walkObjectTree read.
// Only users have an item_spec, only folders sub_items, only files and
// devices a size or device numbers.
type s9sTreeNode struct {
	ItemName          string        `json:"item_name"`
	ItemPath          string        `json:"item_path"`
	ItemType          string        `json:"item_type"`
	ItemACL           string        `json:"item_acl"`
	ItemSpec          string        `json:"item_spec,omitempty"`
	OwnerUserID       int           `json:"owner_user_id"`
	OwnerUserName     string        `json:"owner_user_name"`
	OwnerGroupID      int           `json:"owner_group_id"`
	OwnerGroupName    string        `json:"owner_group_name"`
	Size              uint64        `json:"size,omitempty"`
	MajorDeviceNumber int           `json:"major_device_number,omitempty"`
	MinorDevideNumber int           `json:"minor_devide_number,omitempty"` // sic
	SubItems          []s9sTreeNode `json:"sub_items,omitempty"`
}

// name is S9sTreeNode::name: the root has a path and no name.
func (n s9sTreeNode) name() string {
	if n.ItemName == "" {
		return n.ItemPath
	}
	return n.ItemName
}

// proxyTree is what cmon-proxy's getTree fan-out reads
// (poolhelpers/pool_controller_helpers.go): the cluster items, and each
// one's cluster_id as fmt's %v prints it.
type proxyTree struct {
	Cdt struct {
		SubItems []struct {
			ItemType  string `json:"item_type"`
			ClusterID any    `json:"cluster_id,omitempty"` // Cluster items
		} `json:"sub_items"`
	} `json:"cdt"`
}

// s9sACLReply is what S9sRpcReply::printAcl reads of getAcl's reply (and
// of addAcl's, which the reference answers alike).
type s9sACLReply struct {
	ObjectName     string `json:"object_name"`
	ObjectPath     string `json:"object_path"`
	OwnerUserName  string `json:"owner_user_name"`
	OwnerGroupName string `json:"owner_group_name"`
	ACL            string `json:"acl"`
}

// TestTreeAsTheReferenceClientsReadIt: s9s tree --tree and --list --long,
// and cmon-proxy's merging of the trees of a pool's controllers.
func TestTreeAsTheReferenceClientsReadIt(t *testing.T) {
	c, admin, id := clusterOfOne(t, controllerOptions{}, "127.0.5.4", "t1")

	t.Run("s9s tree", func(t *testing.T) {
		root := decodeContract[struct {
			Cdt s9sTreeNode `json:"cdt"`
		}](t, mustOk(t, admin.call(t, "tree", `{"operation":"getTree"}`)).Raw).Cdt
		if root.name() != "/" || root.ItemType != "Folder" || !s9sACL.MatchString(root.ItemACL) || root.OwnerUserName == "" || root.OwnerGroupName == "" {
			t.Errorf("the root as s9s tree reads it: %+v", root)
		}
		var cluster *s9sTreeNode
		for i, item := range root.SubItems {
			// printObjectListBrief compares item_type as sent: "Cluster".
			if item.ItemType == "Cluster" && item.ItemName == "t1" {
				cluster = &root.SubItems[i]
			}
		}
		if cluster == nil || cluster.ItemPath != "/" || !s9sACL.MatchString(cluster.ItemACL) || cluster.OwnerUserName != "admin" || cluster.OwnerGroupName == "" {
			t.Errorf("cluster t1 as s9s tree --list --long reads it: %+v among %+v", cluster, root.SubItems)
		}
		// s9s tree --list /t1
		top := decodeContract[struct {
			Cdt s9sTreeNode `json:"cdt"`
		}](t, mustOk(t, admin.call(t, "tree", `{"operation":"getTree","path":"/t1"}`)).Raw).Cdt
		if top.ItemName != "t1" || top.ItemPath != "/" || top.ItemType != "Cluster" {
			t.Errorf("getTree of /t1 as s9s reads it: %+v", top)
		}
	})

	t.Run("s9s tree --get-acl, --add-acl, --access", func(t *testing.T) {
		c.createUser(t, "treebob", "treebob-password-1")
		for _, body := range []string{`{"operation":"getAcl","path":"/t1"}`, `{"operation":"addAcl","path":"/t1","acl":"user:treebob:r--"}`} {
			acl := decodeContract[s9sACLReply](t, mustOk(t, admin.call(t, "tree", body)).Raw)
			if acl.ObjectName != "t1" || acl.ObjectPath != "/" || acl.OwnerUserName != "admin" || !s9sACL.MatchString(acl.ACL) {
				t.Errorf("%s as s9s tree reads it: %+v", body, acl)
			}
		}
		// s9s tree --access: Ok when granted, InvalidRequest saying so when not.
		mustOk(t, admin.call(t, "tree", `{"operation":"checkAccess","path":"/t1","privileges":"rw"}`))
		if r := c.session(t, "treebob", "treebob-password-1").call(t, "tree", `{"operation":"checkAccess","path":"/","privileges":"w"}`); r.Status() != "InvalidRequest" ||
			!strings.Contains(fmt.Sprint(r.Reply["error_string"]), "treebob") {
			t.Errorf("a refused checkAccess as s9s reads it: %s", r.Raw)
		}
	})

	t.Run("cmon-proxy merges the pool's trees", func(t *testing.T) {
		tree := decodeContract[proxyTree](t, mustOk(t, admin.call(t, "tree", `{"operation":"getTree"}`)).Raw)
		pool := decodeContract[proxyPoolControllers](t, mustOk(t, admin.call(t, "poolcontrollers", `{"operation":"listcontrollers"}`)).Raw)
		if len(pool.Controllers) != 1 {
			t.Fatalf("listcontrollers: %+v", pool)
		}
		var clusterIDs []string
		for _, item := range tree.Cdt.SubItems {
			if strings.EqualFold(item.ItemType, "Cluster") {
				clusterIDs = append(clusterIDs, fmt.Sprintf("%v", item.ClusterID))
			}
		}
		// Cluster items are matched to the controller owning them by
		// cluster_id as %v prints it against listcontrollers' clusters.
		if len(clusterIDs) != 1 || clusterIDs[0] != strconv.FormatInt(id, 10) || !slices.Contains(pool.Controllers[0].Clusters, clusterIDs[0]) {
			t.Errorf("cluster items' ids %v as cmon-proxy reads them; the controller's clusters %v", clusterIDs, pool.Controllers[0].Clusters)
		}
	})
}

// s9sMessage is what s9s's S9sMessage (libs9s/s9smessage.cpp) and
// S9sRpcReply::printJobLogLong read of a job message; file_name and
// line_number are the reference's where it knows them.
type s9sMessage struct {
	ClassName     string `json:"class_name"`
	MessageID     int    `json:"message_id"`
	JobID         int    `json:"job_id"`
	Created       string `json:"created"`
	MessageStatus string `json:"message_status"`
	MessageText   string `json:"message_text"`
	FileName      string `json:"file_name,omitempty"`
	LineNumber    int    `json:"line_number,omitempty"`
}

// s9sJobLog is what s9s job --log and job --wait --log read of getJobLog:
// the messages, and the job's status, which ends the follow loop
// (S9sBusinessLogic::waitForJobWithLog).
type s9sJobLog struct {
	Job struct {
		JobID  int    `json:"job_id"`
		Status string `json:"status"`
	} `json:"job"`
	Messages []s9sMessage `json:"messages"`
}

// TestJobLogAsS9sFollowsIt: s9s job --log reads the whole log in ascending
// order; job --wait --log asks for up to 300 messages from the number it
// has printed on, until the job has ended.
func TestJobLogAsS9sFollowsIt(t *testing.T) {
	_, admin, id := clusterOfOne(t, controllerOptions{}, "127.0.5.5", "l1")
	jobID := admin.createJob(t, id, "exec", map[string]any{"command": "echo one; echo two; echo three >&2"})
	mustStatus(t, admin.waitJob(t, jobID, time.Minute), "FINISHED")

	logOf := func(extra string) s9sJobLog {
		return decodeContract[s9sJobLog](t, mustOk(t, admin.call(t, "jobs",
			fmt.Sprintf(`{"operation":"getJobLog","job_id":%d,"ascending":true%s}`, jobID, extra))).Raw)
	}
	whole := logOf("")
	if whole.Job.JobID != int(jobID) || whole.Job.Status != "FINISHED" || len(whole.Messages) < 3 {
		t.Fatalf("getJobLog as s9s job --log reads it: job %+v, %d messages", whole.Job, len(whole.Messages))
	}
	var text []string
	for i, m := range whole.Messages {
		text = append(text, m.MessageText)
		if m.JobID != int(jobID) || m.ClassName != "CmonJobMessage" ||
			!slices.Contains([]string{"JOB_SUCCESS", "JOB_WARNING", "JOB_FAILED", "JOB_DEBUG"}, m.MessageStatus) {
			t.Errorf("a message as s9s job --log --long reads it: %+v", m)
		}
		// S9sDateTime parses the controller's own time format.
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", m.Created); err != nil {
			t.Errorf("message %d: created %q: %v", m.MessageID, m.Created, err)
		}
		if i > 0 && m.MessageID <= whole.Messages[i-1].MessageID {
			t.Errorf("messages not in ascending order: %d after %d", m.MessageID, whole.Messages[i-1].MessageID)
		}
	}
	for _, want := range []string{"one", "two", "three"} {
		if !slices.ContainsFunc(text, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("no message says %q: %q", want, text)
		}
	}

	// The follow loop, two at a time instead of 300.
	var followed []int
	for printed := 0; ; {
		page := logOf(fmt.Sprintf(`,"limit":2,"offset":%d`, printed))
		if len(page.Messages) > 2 {
			t.Fatalf("limit 2 answered %d messages", len(page.Messages))
		}
		for _, m := range page.Messages {
			followed = append(followed, m.MessageID)
		}
		printed += len(page.Messages)
		if len(page.Messages) == 0 && slices.Contains([]string{"FINISHED", "FAILED", "ABORTED"}, page.Job.Status) {
			break
		}
		if printed > 2*len(whole.Messages) {
			t.Fatalf("the follow loop does not end: %v", followed)
		}
	}
	var all []int
	for _, m := range whole.Messages {
		all = append(all, m.MessageID)
	}
	if !slices.Equal(followed, all) {
		t.Errorf("followed page by page %v, the whole log %v", followed, all)
	}

	// cmon-proxy's CreateJobInstanceWait polls getJobInstance.
	instance := decodeContract[struct {
		ControllerID string    `json:"controller_id"`
		Job          *proxyJob `json:"job"`
	}](t, mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstance","job_id":%d}`, jobID))).Raw)
	if j := instance.Job; j == nil || j.JobID != uint64(jobID) || j.Status != "FINISHED" || !j.HasProgress || j.ProgressPercent.String() != "100" ||
		j.ClusterID != uint64(id) || j.JobSpec == nil || j.JobSpec.Command != "exec" {
		t.Errorf("getJobInstance as cmon-proxy reads it: %+v", instance.Job)
	}
}

// s9sAlarmStatistics is what S9sRpcReply::printAlarmStatistics reads.
type s9sAlarmStatistics struct {
	AlarmStatistics []struct {
		ClusterID int `json:"cluster_id"`
		Critical  int `json:"critical"`
		Warning   int `json:"warning"`
	} `json:"alarm_statistics"`
}

// s9sFoundMaintenance is what S9sRpcReply::printCurrentMaintenance and
// printNextMaintenance read: s9s prints ui_string when found_maintenance.
type s9sFoundMaintenance struct {
	FoundMaintenance bool   `json:"found_maintenance"`
	UIString         string `json:"ui_string"`
}

// TestAlarmStatisticsAndMaintenanceAsS9sReadsThem: s9s alarm --stat, and
// s9s maintenance --current and --next.
func TestAlarmStatisticsAndMaintenanceAsS9sReadsThem(t *testing.T) {
	_, admin, id := clusterOfOne(t, controllerOptions{}, "127.0.5.6", "a1")

	t.Run("s9s alarm --stat", func(t *testing.T) {
		for _, body := range []string{`{"operation":"getStatistics"}`, fmt.Sprintf(`{"operation":"getStatistics","cluster_id":%d}`, id)} {
			stats := decodeContract[s9sAlarmStatistics](t, mustOk(t, admin.call(t, "alarm", body)).Raw)
			if len(stats.AlarmStatistics) != 1 || stats.AlarmStatistics[0].ClusterID != int(id) ||
				stats.AlarmStatistics[0].Critical != 0 || stats.AlarmStatistics[0].Warning != 0 {
				t.Errorf("%s as s9s alarm --stat reads it: %+v", body, stats)
			}
		}
	})

	t.Run("s9s maintenance --current, --next", func(t *testing.T) {
		now := time.Now().UTC()
		stamp := func(d time.Duration) string { return now.Add(d).Format("2006-01-02T15:04:05.000Z") }
		mustOk(t, admin.call(t, "maintenance", fmt.Sprintf(`{"operation":"addMaintenance","cluster_id":%d,"deadline":%q,"reason":"now"}`,
			id, stamp(time.Hour))))
		mustOk(t, admin.call(t, "maintenance", fmt.Sprintf(`{"operation":"addMaintenance","cluster_id":%d,"initiate":%q,"deadline":%q,"reason":"later"}`,
			id, stamp(24*time.Hour), stamp(25*time.Hour))))
		for op, reason := range map[string]string{"getCurrentMaintenance": "now", "getNextMaintenance": "later"} {
			r := decodeContract[s9sFoundMaintenance](t, mustOk(t, admin.call(t, "maintenance",
				fmt.Sprintf(`{"operation":%q,"cluster_id":%d}`, op, id))).Raw)
			if !r.FoundMaintenance || !strings.Contains(r.UIString, reason) {
				t.Errorf("%s as s9s reads it: found_maintenance %v, ui_string %q, want the period %q", op, r.FoundMaintenance, r.UIString, reason)
			}
		}
	})
}

// s9sJobRegistered is what S9sBusinessLogic::maybeJobRegistered reads of a
// reply that made a job (createJobInstance, cloneJobInstance).
type s9sJobRegistered struct {
	Job struct {
		JobID  int    `json:"job_id"`
		Status string `json:"status"`
	} `json:"job"`
}

// TestJobActionsAsS9sSendsThem: s9s job --clone, --disable, --enable, --kill
// and --delete, each as s9srpcclient.cpp sends it.
func TestJobActionsAsS9sSendsThem(t *testing.T) {
	_, admin, id := clusterOfOne(t, controllerOptions{}, "127.0.5.7", "ja1")
	finished := admin.createJob(t, id, "exec", map[string]any{"command": "true"})
	mustStatus(t, admin.waitJob(t, finished, time.Minute), "FINISHED")

	clone := decodeContract[s9sJobRegistered](t, mustOk(t, admin.call(t, "jobs",
		fmt.Sprintf(`{"operation":"cloneJobInstance","job_id":%d}`, finished))).Raw)
	if clone.Job.JobID == 0 || int64(clone.Job.JobID) == finished {
		t.Fatalf("s9s job --clone reads job id %d", clone.Job.JobID)
	}
	mustStatus(t, admin.waitJob(t, int64(clone.Job.JobID), time.Minute), "FINISHED")

	// --disable and --enable: updateJobInstance with the job's id and
	// status inside "job".
	recurring := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,
		"job":{"recurrence":"0 3 * * *","job_spec":{"command":"exec","job_data":{"command":"true"}}}}`, id)))
	rid := int64(recurring.Reply["job"].(map[string]any)["job_id"].(float64))
	for _, status := range []string{"PAUSED", "SCHEDULED"} {
		mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"updateJobInstance","job":{"class_name":"CmonJobInstance","status":%q,"job_id":%d}}`, status, rid)))
		got := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstance","job_id":%d}`, rid)))
		if s := got.Reply["job"].(map[string]any)["status"]; s != status {
			t.Errorf("after updateJobInstance %s the job is %v", status, s)
		}
	}

	// --kill: s9s prints "Signal sent." on Ok.
	long := admin.createJob(t, id, "exec", map[string]any{"command": "sleep 60"})
	admin.waitJob(t, long, time.Minute, "RUNNING")
	mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"killJobInstance","job_id":%d}`, long)))
	admin.waitJob(t, long, time.Minute, "ABORTED", "FAILED")

	// --delete: s9s prints "Deleted." on Ok; the job is gone after it.
	mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"deleteJobInstance","job_id":%d}`, finished)))
	if r := admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstance","job_id":%d}`, finished)); r.Status() != "ObjectNotFound" {
		t.Errorf("a deleted job: %s", r.Raw)
	}
}
