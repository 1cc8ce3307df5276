package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/rbac"
)

// Access is what a command needs of the user a job runs for. It is declared
// once, beside the command in the registry, and every way a job comes to run
// asks it (Draft.Authorize), so no caller keeps lists of commands of its own.
type Access struct {
	// Need are the privileges the user must hold: on "/" when OnRoot, else on
	// the job's cluster.
	Need rbac.Privileges
	// OnRoot commands change the set of clusters (register, remove): Need
	// applies to "/", and a cluster, when named, must exist.
	OnRoot bool
	// ClusterOptional commands may run without a cluster; with one, Need
	// applies to it unless OnRoot. Other commands refuse a job without one.
	ClusterOptional bool
	// ClusterInJobData: job_data may name the cluster as clusterid or
	// cluster_id (as the reference's stop job does); it must agree with the job's.
	ClusterInJobData bool
	// SuperuserFields are job_data fields only superusers may set, such as
	// ssh_keyfile: a file that cmon itself reads.
	SuperuserFields []string
}

// Privileger is the access policy as jobs reads it (*rbac.Policy).
type Privileger interface {
	Privileges(u *rbac.User, path string) rbac.Privileges
}

// Draft is a job as asked for, resolved against the registry: its command,
// its job_data as a JSON object, and the cluster it acts on, settled from the
// request and job_data. It is not yet checked by the command's Validate.
type Draft struct {
	Command *Command
	// Name is the command's name as the client sent it (an alias such as
	// "addnode" included), lower case: the job keeps it.
	Name      string
	JobData   json.RawMessage
	ClusterID int64 // 0: no cluster
	// Timeout is job_data's timeout_sec: the job's, or each node's for
	// TimeoutPerNode commands.
	Timeout time.Duration
	// JobTimeout is job_data's timeout, the reference's name for the whole
	// job's bound (what s9s --timeout sends), whatever the command.
	JobTimeout time.Duration
	fields     map[string]json.RawMessage // job_data's top-level fields
}

// Draft resolves a job's command and reads job_data's common fields, for a
// job on cluster clusterID (0: none named). Bad input is an *InvalidError.
func (r *Registry) Draft(command string, data json.RawMessage, clusterID int64) (*Draft, error) {
	if strings.TrimSpace(command) == "" {
		return nil, invalid(ErrUnknownCommand, "job_spec.command is missing")
	}
	cmd, ok := r.Lookup(command)
	if !ok {
		return nil, invalid(ErrUnknownCommand, "unknown job command %q", command)
	}
	d, err := readJobData(data)
	if err != nil {
		return nil, err
	}
	d.Command, d.Name, d.ClusterID = cmd, strings.ToLower(strings.TrimSpace(command)), clusterID
	if cmd.Access.ClusterInJobData {
		id, err := jobCluster(clusterID, d.dataClusterIDs()...)
		switch {
		case errors.Is(err, errNoCluster):
		case err != nil:
			return nil, invalid(ErrBadJobData, "invalid job_data for command %q: %v", cmd.Name, err)
		default:
			d.ClusterID = id
		}
	}
	if d.ClusterID == 0 && !cmd.Access.ClusterOptional {
		return nil, invalid(ErrNeedsCluster, "job command '%s' needs a cluster: set 'cluster_id' or 'cluster_name'", cmd.Name)
	}
	return d, nil
}

// DraftOf is the draft of a stored job, to authorize running it again.
func (r *Registry) DraftOf(j *Job) (*Draft, error) {
	return r.Draft(j.Command, j.JobData, j.ClusterID)
}

// Authorize checks the command's declaration for user u under policy p;
// cluster is the draft's cluster (nil when it has none). A refusal is an
// *rbac.DeniedError.
func (d *Draft) Authorize(p Privileger, u *rbac.User, cluster *hosts.Cluster) error {
	a := d.Command.Access
	switch {
	case a.OnRoot:
		if missing := a.Need &^ p.Privileges(u, rbac.RootPath); missing != 0 {
			return rbac.DeniedOn(missing, rbac.PathObject(rbac.RootPath), u.Name)
		}
	case cluster != nil:
		if missing := a.Need &^ p.Privileges(u, rbac.ClusterPath(cluster.Name)); missing != 0 {
			return rbac.DeniedOn(missing, rbac.ClusterObject(cluster.Name, cluster.ID), u.Name)
		}
	}
	if u.IsSuperuser() {
		return nil
	}
	for _, f := range a.SuperuserFields {
		if d.sets(f) {
			return rbac.Denied("Superuser", "job_data field '"+f+"'", u.Name)
		}
	}
	return nil
}

// sets tells whether job_data gives field a value other than null or "".
func (d *Draft) sets(field string) bool {
	v := bytes.TrimSpace(d.fields[field])
	return len(v) > 0 && !bytes.Equal(v, []byte("null")) && !bytes.Equal(v, []byte(`""`))
}

// errNoCluster: neither the job nor its job_data names a cluster.
var errNoCluster = errors.New("no cluster given")

// jobCluster settles which cluster a job acts on: the job's cluster_id and
// the ids job_data may carry must agree, so that access granted on the job's
// cluster never reaches another one.
func jobCluster(jobClusterID int64, dataIDs ...int64) (int64, error) {
	id := jobClusterID
	for _, d := range dataIDs {
		switch {
		case d < 0:
			return 0, fmt.Errorf("job_data cluster id %d is not valid", d)
		case d == 0:
		case id == 0:
			id = d
		case id != d:
			return 0, fmt.Errorf("job_data names cluster %d but the job is for cluster %d", d, id)
		}
	}
	if id <= 0 {
		return 0, errNoCluster
	}
	return id, nil
}
