package rpc

import (
	"time"

	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// renderUser is the CmonUser wire shape; never a password hash.
func renderUser(u *rbac.User) map[string]any {
	out := map[string]any{
		"class_name":        "CmonUser",
		"cdt_path":          "/",
		"user_id":           u.ID,
		"user_name":         u.Name,
		"first_name":        u.FirstName,
		"last_name":         u.LastName,
		"email_address":     u.Email,
		"origin":            u.Origin,
		"disabled":          u.Disabled,
		"suspended":         u.Suspended,
		"created":           jobs.FormatTime(u.Created),
		"last_login":        jobs.FormatTime(u.LastLogin),
		"last_failed_login": jobs.FormatTime(u.LastFailedLogin),
		"n_failed_logins":   u.NFailedLogins,
		"groups":            renderList(u.Groups, renderGroup),
		"timezone":          renderTimezone(u.Timezone),
		"owner_user_id":     u.ID,
		"owner_user_name":   u.Name,
	}
	if len(u.Groups) > 0 {
		out["owner_group_id"], out["owner_group_name"] = u.Groups[0].ID, u.Groups[0].Name
	}
	return out
}

// renderGroup is the CmonGroup wire shape.
func renderGroup(g rbac.Group) map[string]any {
	return map[string]any{
		"class_name": "CmonGroup",
		"cdt_path":   "/groups",
		"group_id":   g.ID,
		"group_name": g.Name,
		"created":    jobs.FormatTime(g.Created),
	}
}

// renderTimezone is a CmonTimeZone; offset is in seconds west of UTC, as the
// original controller reports it (CET is -3600).
func renderTimezone(name string) map[string]any {
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc, name = time.UTC, "UTC"
	}
	now := time.Now().In(loc)
	abbrev, offset := now.Zone()
	year := now.Year()
	_, jan := time.Date(year, 1, 1, 0, 0, 0, 0, loc).Zone()
	_, jul := time.Date(year, 7, 1, 0, 0, 0, 0, loc).Zone()
	return map[string]any{"class_name": "CmonTimeZone", "name": name, "abbreviation": abbrev,
		"offset": -offset, "use_dst": jan != jul}
}
