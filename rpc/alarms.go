package rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// alarms serves /v2/alarm, /v2/maintenance and /v2/log: what cmon observed
// of the clusters, the periods their alarms are held back, and its log.
type alarms struct {
	*guard
	store AlarmStore
}

// AlarmStore holds the alarms, maintenance periods and log of the clusters
// (*hosts.Alarms).
type AlarmStore interface {
	AlarmLister
	Get(ctx context.Context, id int64) (hosts.Alarm, error)
	Ignore(ctx context.Context, id int64, ignore bool) error
	AddMaintenance(ctx context.Context, m hosts.Maintenance) error
	RemoveMaintenance(ctx context.Context, uuid string) (hosts.Maintenance, error)
	Maintenances(ctx context.Context, clusterID int64) ([]hosts.Maintenance, error)
	Entries(ctx context.Context, f hosts.LogFilter) ([]hosts.LogEntry, int, error)
}

func (h *alarms) alarmOperations() []Operation {
	return []Operation{
		{Name: "getAlarms", ReadOnly: true, Serve: onNamedCluster(h.guard, rbac.Read, h.getAlarms)}, // else r per cluster
		{Name: "getAlarm", ReadOnly: true, Serve: withPolicy(h.guard, h.getAlarm)},
		{Name: "ignoreAlarm", Serve: withPolicy(h.guard, h.ignoreAlarm)},
		{Name: "getStatistics", ReadOnly: true, Serve: onNamedCluster(h.guard, rbac.Read, h.getStatistics)},
	}
}

func (h *alarms) maintenanceOperations() []Operation {
	return []Operation{
		{Name: "addMaintenance", Serve: onHostCluster(h.guard, rbac.Write, h.addMaintenance)},
		{Name: "removeMaintenance", Serve: withPolicy(h.guard, h.removeMaintenance)},
		{Name: "getMaintenance", ReadOnly: true, Serve: onNamedCluster(h.guard, rbac.Read, h.getMaintenance(allPeriods))},
		{Name: "getCurrentMaintenance", ReadOnly: true, Serve: onNamedCluster(h.guard, rbac.Read, h.getMaintenance(currentPeriods))},
		{Name: "getNextMaintenance", ReadOnly: true, Serve: onNamedCluster(h.guard, rbac.Read, h.getMaintenance(nextPeriod))},
	}
}

func (h *alarms) logOperations() []Operation {
	return []Operation{{Name: "getLogEntries", ReadOnly: true, Serve: onNamedCluster(h.guard, rbac.Read, h.getLogEntries)}}
}

// clusterScope is the clusters a request covers: the one it names, else
// every cluster the caller may read.
func (h *alarms) clusterScope(ctx context.Context, req *Request, p Policy, c *hosts.Cluster) ([]int64, error) {
	if c != nil {
		return []int64{c.ID}, nil
	}
	all, err := h.inventory.List(ctx)
	if err != nil {
		return nil, err
	}
	visible, _ := readable(req, p, all)
	ids := []int64{-1} // matches nothing when no cluster is readable
	for _, v := range visible {
		ids = append(ids, v.ID)
	}
	return ids, nil
}

type alarmsRequest struct {
	clusterRef
	WithIgnored bool `json:"with_ignored"`
}

func (h *alarms) getAlarms(ctx context.Context, req *Request, p Policy, c *hosts.Cluster, in *alarmsRequest) (Reply, error) {
	ids, err := h.clusterScope(ctx, req, p, c)
	if err != nil {
		return nil, err
	}
	list, err := h.store.List(ctx, hosts.AlarmFilter{ClusterIDs: ids, WithIgnored: in.WithIgnored})
	if err != nil {
		return nil, err
	}
	return &alarmsReply{Total: len(list), Alarms: renderList(list, hosts.Alarm.Wire)}, nil
}

// alarmsReply is getAlarms', as cmon-proxy's api.GetAlarmsReply.
type alarmsReply struct {
	Envelope
	Total  int               `json:"total"`
	Alarms []hosts.WireAlarm `json:"alarms"`
}

// alarmReply is one alarm's, after getAlarm or ignoreAlarm.
type alarmReply struct {
	Envelope
	Alarm hosts.WireAlarm `json:"alarm"`
}

type alarmRef struct {
	AlarmID int64 `json:"alarm_id"`
	Ignore  *bool `json:"ignore"`
}

// alarmFor loads an alarm the caller has need on; one of a cluster it may
// not read is not found, as for jobs.
func (h *alarms) alarmFor(ctx context.Context, req *Request, p Policy, id int64, need rbac.Privileges) (hosts.Alarm, error) {
	if id <= 0 {
		return hosts.Alarm{}, InvalidRequest("Field 'alarm_id' must be a positive number.")
	}
	a, err := h.store.Get(ctx, id)
	if errors.Is(err, hosts.ErrAlarmNotFound) {
		return a, NotFound("Alarm %d was not found.", id)
	}
	if err != nil {
		return a, err
	}
	req.audit.clusterID = a.ClusterID
	var priv rbac.Privileges
	name := ""
	if c, err := h.inventory.Get(ctx, a.ClusterID); err == nil {
		priv, name = p.Privileges(req.Caller, rbac.ClusterPath(c.Name)), c.Name
	} else if req.Caller.IsSuperuser() {
		priv = rbac.All // the cluster is gone; its alarms stay for superusers
	}
	if !priv.Has(rbac.Read) {
		return a, NotFound("Alarm %d was not found.", id)
	}
	if missing := need &^ priv; missing != 0 {
		return a, denied(rbac.DeniedOn(missing, rbac.ClusterObject(name, a.ClusterID), req.Caller.Name))
	}
	return a, nil
}

func (h *alarms) getAlarm(ctx context.Context, req *Request, p Policy, in *alarmRef) (Reply, error) {
	a, err := h.alarmFor(ctx, req, p, in.AlarmID, rbac.Read)
	if err != nil {
		return nil, err
	}
	return &alarmReply{Alarm: a.Wire()}, nil
}

func (h *alarms) ignoreAlarm(ctx context.Context, req *Request, p Policy, in *alarmRef) (Reply, error) {
	if _, err := h.alarmFor(ctx, req, p, in.AlarmID, rbac.Write); err != nil {
		return nil, err
	}
	ignore := in.Ignore == nil || *in.Ignore
	if err := h.store.Ignore(ctx, in.AlarmID, ignore); err != nil {
		return nil, err
	}
	a, err := h.store.Get(ctx, in.AlarmID)
	if err != nil {
		return nil, err
	}
	return &alarmReply{Alarm: a.Wire()}, nil
}

// wireAlarmStats is a CmonAlarmStatistics: a cluster's open alarms by
// severity, as s9s cluster --stat reads it.
type wireAlarmStats struct {
	ClassName string `json:"class_name"`
	ClusterID int64  `json:"cluster_id"`
	Critical  int    `json:"critical"`
	Warning   int    `json:"warning"`
}

// countAlarms tallies the alarms of list for each cluster of ids (ids <= 0
// name no cluster and are passed over).
func countAlarms(ids []int64, list []hosts.Alarm) map[int64]*wireAlarmStats {
	out := make(map[int64]*wireAlarmStats, len(ids))
	for _, id := range ids {
		if id > 0 {
			out[id] = &wireAlarmStats{ClassName: "CmonAlarmStatistics", ClusterID: id}
		}
	}
	for _, a := range list {
		st := out[a.ClusterID]
		switch {
		case st == nil:
		case a.Severity == hosts.SeverityCritical:
			st.Critical++
		default:
			st.Warning++
		}
	}
	return out
}

func (h *alarms) getStatistics(ctx context.Context, req *Request, p Policy, c *hosts.Cluster, _ *alarmsRequest) (Reply, error) {
	ids, err := h.clusterScope(ctx, req, p, c)
	if err != nil {
		return nil, err
	}
	list, err := h.store.List(ctx, hosts.AlarmFilter{ClusterIDs: ids})
	if err != nil {
		return nil, err
	}
	stats := countAlarms(ids, list)
	out := make([]*wireAlarmStats, 0, len(ids))
	for _, id := range ids {
		if st := stats[id]; st != nil {
			out = append(out, st)
		}
	}
	return &alarmStatsReply{AlarmStatistics: out, Total: len(out)}, nil
}

// alarmStatsReply is getStatistics': each cluster's open alarms.
type alarmStatsReply struct {
	Envelope
	Total           int               `json:"total"`
	AlarmStatistics []*wireAlarmStats `json:"alarm_statistics"`
}

// maintenanceRequest is addMaintenance's input.
type maintenanceRequest struct {
	clusterRef
	Hostname string `json:"hostname"`
	Initiate string `json:"initiate"`
	Deadline string `json:"deadline"`
	Reason   string `json:"reason"`
}

func (in maintenanceRequest) host() string { return strings.TrimSpace(in.Hostname) }

func (h *alarms) addMaintenance(ctx context.Context, req *Request, _ Policy, c *hosts.Cluster, in *maintenanceRequest) (Reply, error) {
	m := hosts.Maintenance{UUID: uuid.NewString(), ClusterID: c.ID, Hostname: strings.TrimSpace(in.Hostname), Reason: in.Reason, UserName: req.Caller.Name}
	if m.Hostname != "" && !hasHost(c, m.Hostname) {
		return nil, InvalidRequest("Host '%s' is not in cluster %d.", clip(m.Hostname, 255), c.ID)
	}
	var err error
	m.Initiate = time.Now().UTC()
	if in.Initiate != "" {
		if m.Initiate, err = parseTime("initiate", in.Initiate); err != nil {
			return nil, err
		}
	}
	if in.Deadline == "" {
		return nil, InvalidRequest("Field 'deadline' is required: when the maintenance ends.")
	}
	if m.Deadline, err = parseTime("deadline", in.Deadline); err != nil {
		return nil, err
	}
	if !m.Deadline.After(m.Initiate) {
		return nil, InvalidRequest("Field 'deadline' must be after 'initiate'.")
	}
	if strings.TrimSpace(m.Reason) == "" {
		return nil, InvalidRequest("Field 'reason' is required.")
	}
	if err := h.store.AddMaintenance(ctx, m); err != nil {
		return nil, err
	}
	return &maintenanceReply{UUID: m.UUID, Maintenance: renderPeriod(m, time.Now())}, nil
}

// maintenanceReply is addMaintenance's: the period made and its UUID.
type maintenanceReply struct {
	Envelope
	UUID        string          `json:"UUID"`
	Maintenance wireMaintPeriod `json:"maintenance"`
}

func hasHost(c *hosts.Cluster, name string) bool {
	for _, h := range c.Hosts {
		if strings.EqualFold(h.Hostname, name) {
			return true
		}
	}
	return false
}

type maintenanceRef struct {
	UUID  string `json:"UUID"`
	Lower string `json:"uuid"`
}

func (h *alarms) removeMaintenance(ctx context.Context, req *Request, p Policy, in *maintenanceRef) (Reply, error) {
	id := in.UUID
	if id == "" {
		id = in.Lower
	}
	if id == "" {
		return nil, InvalidRequest("Field 'UUID' is required.")
	}
	list, err := h.store.Maintenances(ctx, 0)
	if err != nil {
		return nil, err
	}
	for _, m := range list {
		if m.UUID != id {
			continue
		}
		if _, err := h.checkCluster(ctx, req, p, clusterRef{ID: m.ClusterID}, rbac.Write); err != nil {
			return nil, err
		}
		if _, err := h.store.RemoveMaintenance(ctx, id); err != nil {
			return nil, err
		}
		return done(), nil
	}
	return nil, NotFound("Maintenance '%s' was not found.", clip(id, 64))
}

// Which periods a maintenance listing shows.
const (
	allPeriods = iota
	currentPeriods
	nextPeriod
)

// maintenanceQuery is the input of the maintenance listings; s9s names a
// host for --current and --next.
type maintenanceQuery struct {
	clusterRef
	Hostname string `json:"hostname"`
}

func (h *alarms) getMaintenance(which int) func(context.Context, *Request, Policy, *hosts.Cluster, *maintenanceQuery) (Reply, error) {
	return func(ctx context.Context, req *Request, p Policy, c *hosts.Cluster, in *maintenanceQuery) (Reply, error) {
		ids, err := h.clusterScope(ctx, req, p, c)
		if err != nil {
			return nil, err
		}
		all, err := h.store.Maintenances(ctx, 0) // one read, grouped below
		if err != nil {
			return nil, err
		}
		byCluster := map[int64][]hosts.Maintenance{}
		for _, m := range all {
			byCluster[m.ClusterID] = append(byCluster[m.ClusterID], m)
		}
		now := time.Now()
		records := []wireMaintenanceRecord{}
		for _, id := range ids {
			if id <= 0 {
				continue
			}
			cl, err := h.inventory.Get(ctx, id)
			if err != nil {
				continue // gone meanwhile
			}
			records = append(records, maintenanceRecords(cl, byCluster[id], which, now)...)
		}
		reply := &maintenanceListReply{MaintenanceRecords: records, Total: len(records)}
		if which != allPeriods {
			reply.found(records, strings.TrimSpace(in.Hostname), which)
		}
		return reply, nil
	}
}

// maintenanceListReply is a maintenance listing as s9s reads it; for the
// current and the next period, also the one found, as s9s prints it.
type maintenanceListReply struct {
	Envelope
	Total              int                     `json:"total"`
	MaintenanceRecords []wireMaintenanceRecord `json:"maintenance_records"`
	FoundMaintenance   *bool                   `json:"found_maintenance,omitempty"`
	UIString           string                  `json:"ui_string,omitempty"`
	MaintenancePeriod  *wireMaintPeriod        `json:"maintenance_period,omitempty"`
}

// found picks, of the records' periods for whole clusters and for host
// (when not ""), the current one that ends first or the next one to begin,
// and says it in a line.
func (r *maintenanceListReply) found(records []wireMaintenanceRecord, host string, which int) {
	// Times are in one format, so their order is the strings'.
	when := func(m *wireMaintPeriod) string { return m.Initiate }
	if which == currentPeriods {
		when = func(m *wireMaintPeriod) string { return m.Deadline }
	}
	var best *wireMaintPeriod
	subject := ""
	for _, rec := range records {
		if rec.Cluster == nil && (host == "" || !strings.EqualFold(rec.Hostname, host)) {
			continue
		}
		for i := range rec.Periods {
			if m := &rec.Periods[i]; best == nil || when(m) < when(best) {
				best, subject = m, "Host "+rec.Hostname
				if rec.Cluster != nil {
					subject = fmt.Sprintf("Cluster %d", rec.Cluster.ClusterID)
				}
			}
		}
	}
	found := best != nil
	r.FoundMaintenance = &found
	if !found {
		return
	}
	r.MaintenancePeriod = best
	if which == currentPeriods {
		r.UIString = fmt.Sprintf("%s is under maintenance: %s", subject, best.Reason)
		return
	}
	r.UIString = fmt.Sprintf("%s will be under maintenance from %s to %s: %s", subject, best.Initiate, best.Deadline, best.Reason)
}

// wireMaintenanceRecord is one record of a maintenance listing as s9s reads
// it: a cluster's (cluster_id and cluster set) holding its whole-cluster
// periods, or a host's (hostname set) holding that host's.
type wireMaintenanceRecord struct {
	ClusterID *int64            `json:"cluster_id,omitempty"`
	Cluster   *wireMaintCluster `json:"cluster,omitempty"`
	Hostname  string            `json:"hostname,omitempty"`
	IsActive  bool              `json:"is_active"`
	Periods   []wireMaintPeriod `json:"maintenance_periods"`
}

type wireMaintCluster struct {
	ClusterID             int64  `json:"cluster_id"`
	ClusterName           string `json:"cluster_name"`
	ClusterAutoRecovery   bool   `json:"cluster_auto_recovery"`
	MaintenanceModeActive bool   `json:"maintenance_mode_active"`
}

// wireMaintPeriod is a maintenance period as s9s reads it (username and
// groupname; cmon records no group, so groupname is empty).
type wireMaintPeriod struct {
	UUID      string `json:"UUID"`
	Hostname  string `json:"hostname"`
	Initiate  string `json:"initiate"`
	Deadline  string `json:"deadline"`
	IsActive  bool   `json:"is_active"`
	Reason    string `json:"reason"`
	Username  string `json:"username"`
	Groupname string `json:"groupname"`
}

// maintenanceRecords are cluster cl's records: its own, always in a full
// listing, then one per host with periods; which keeps all periods, the
// current ones or the next one of each record.
func maintenanceRecords(cl *hosts.Cluster, periods []hosts.Maintenance, which int, now time.Time) []wireMaintenanceRecord {
	id := cl.ID
	clusterRecord := wireMaintenanceRecord{ClusterID: &id, Periods: []wireMaintPeriod{}}
	var hostRecords []wireMaintenanceRecord
	byHost := map[string]int{}
	for _, m := range periods {
		rec := &clusterRecord
		if m.Hostname != "" {
			i, ok := byHost[m.Hostname]
			if !ok {
				i = len(hostRecords)
				byHost[m.Hostname] = i
				hostRecords = append(hostRecords, wireMaintenanceRecord{Hostname: m.Hostname})
			}
			rec = &hostRecords[i]
		}
		rec.IsActive = rec.IsActive || m.Active(now)
		switch {
		case which == currentPeriods && !m.Active(now), which == nextPeriod && !m.Initiate.After(now),
			which == nextPeriod && len(rec.Periods) > 0:
			continue
		}
		rec.Periods = append(rec.Periods, renderPeriod(m, now))
	}
	clusterRecord.Cluster = &wireMaintCluster{ClusterID: id, ClusterName: cl.Name, MaintenanceModeActive: clusterRecord.IsActive}
	var out []wireMaintenanceRecord
	for _, r := range append([]wireMaintenanceRecord{clusterRecord}, hostRecords...) {
		if len(r.Periods) > 0 || (which == allPeriods && r.Cluster != nil) {
			out = append(out, r)
		}
	}
	return out
}

func renderPeriod(m hosts.Maintenance, now time.Time) wireMaintPeriod {
	return wireMaintPeriod{UUID: m.UUID, Hostname: m.Hostname, Initiate: jobs.FormatTime(m.Initiate), Deadline: jobs.FormatTime(m.Deadline),
		IsActive: m.Active(now), Reason: m.Reason, Username: m.UserName}
}

// logEntriesRequest is getLogEntries' input.
type logEntriesRequest struct {
	clusterRef
	Severity string `json:"severity"`
	From     string `json:"created_after"`
	To       string `json:"created_before"`
	Limit    int    `json:"limit"`
	Offset   int    `json:"offset"`
}

func (h *alarms) getLogEntries(ctx context.Context, req *Request, p Policy, c *hosts.Cluster, in *logEntriesRequest) (Reply, error) {
	ids, err := h.clusterScope(ctx, req, p, c)
	if err != nil {
		return nil, err
	}
	f := hosts.LogFilter{ClusterIDs: ids, Severity: strings.ToUpper(in.Severity), Limit: 100, Offset: max(in.Offset, 0)}
	if in.Limit > 0 {
		f.Limit = min(in.Limit, 1000)
	}
	if in.From != "" {
		if f.From, err = parseTime("created_after", in.From); err != nil {
			return nil, err
		}
	}
	if in.To != "" {
		if f.To, err = parseTime("created_before", in.To); err != nil {
			return nil, err
		}
	}
	list, total, err := h.store.Entries(ctx, f)
	if err != nil {
		return nil, err
	}
	return &logEntriesReply{Total: total, LogEntries: renderList(list, renderLogEntry)}, nil
}

// logEntriesReply is getLogEntries', as cmon-proxy's api.GetLogsReply.
type logEntriesReply struct {
	Envelope
	Total      int            `json:"total"`
	LogEntries []wireLogEntry `json:"log_entries"`
}

// wireLogEntry is a CmonLogMessage as the reference's clients read it (s9s's
// S9sMessage, cmon-proxy's api.Log): the cluster and the text in
// log_specifics, the time in log_origins. cluster_id, hostname and message
// stay at the top for cmon's own clients.
type wireLogEntry struct {
	ClassName    string          `json:"class_name"`
	LogID        int64           `json:"log_id"`
	LogClass     string          `json:"log_class"`
	Created      string          `json:"created"`
	Severity     string          `json:"severity"`
	Component    string          `json:"component"`
	ClusterID    int64           `json:"cluster_id"`
	Hostname     string          `json:"hostname"`
	Message      string          `json:"message"`
	LogSpecifics wireLogSpecific `json:"log_specifics"`
	LogOrigins   wireLogOrigins  `json:"log_origins"`
}

type wireLogSpecific struct {
	ClusterID   int64  `json:"cluster_id"`
	MessageText string `json:"message_text"`
}

// wireLogOrigins says where an entry comes from. The controller that wrote
// it may be another of its pool, so no process or source line is named.
type wireLogOrigins struct {
	SenderBinary string `json:"sender_binary"`
	SenderFile   string `json:"sender_file"`
	SenderLine   int64  `json:"sender_line"`
	SenderPid    int64  `json:"sender_pid"`
	TvSec        int64  `json:"tv_sec"`
	TvNsec       int64  `json:"tv_nsec"`
}

func renderLogEntry(e hosts.LogEntry) wireLogEntry {
	return wireLogEntry{ClassName: "CmonLogMessage", LogID: e.ID, LogClass: "LogMessage", Created: jobs.FormatTime(e.Created),
		Severity: e.Severity, Component: e.Component, ClusterID: e.ClusterID, Hostname: e.Hostname, Message: e.Message,
		LogSpecifics: wireLogSpecific{ClusterID: e.ClusterID, MessageText: e.Message},
		LogOrigins:   wireLogOrigins{SenderBinary: "cmon", TvSec: e.Created.Unix(), TvNsec: int64(e.Created.Nanosecond())}}
}
