package rpc

import (
	"time"

	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// wireUser is a CmonUser as the reference's clients read it (s9s's
// S9sUser, cmon-proxy's api.User); never a password hash.
type wireUser struct {
	ClassName       string       `json:"class_name"`
	CdtPath         string       `json:"cdt_path"`
	UserID          int64        `json:"user_id"`
	UserName        string       `json:"user_name"`
	FirstName       string       `json:"first_name"`
	LastName        string       `json:"last_name"`
	EmailAddress    string       `json:"email_address"`
	Origin          string       `json:"origin"`
	Disabled        bool         `json:"disabled"`
	Suspended       bool         `json:"suspended"`
	Created         string       `json:"created"`
	LastLogin       string       `json:"last_login"`
	LastFailedLogin string       `json:"last_failed_login"`
	NFailedLogins   int          `json:"n_failed_logins"`
	Groups          []wireGroup  `json:"groups"`
	Timezone        wireTimezone `json:"timezone"`
	OwnerUserID     int64        `json:"owner_user_id"`
	OwnerUserName   string       `json:"owner_user_name"`
	OwnerGroupID    int64        `json:"owner_group_id,omitempty"`
	OwnerGroupName  string       `json:"owner_group_name,omitempty"`
	ACL             string       `json:"acl"`
}

// userACL is a user's record as ACL-reading clients show it: its owner, the
// user, reads and changes it; superusers may do anything, as ever; nobody
// else reads it.
const userACL = "user::rw-,group::---,other::---"

// groupACL is a group's: superusers (the admins group) manage groups, and
// members read their own.
const groupACL = "user::rwx,group::rwx,other::---"

func renderUser(u *rbac.User) wireUser {
	out := wireUser{ClassName: "CmonUser", CdtPath: "/", UserID: u.ID, UserName: u.Name, FirstName: u.FirstName,
		LastName: u.LastName, EmailAddress: u.Email, Origin: u.Origin, Disabled: u.Disabled, Suspended: u.Suspended,
		Created: jobs.FormatTime(u.Created), LastLogin: jobs.FormatTime(u.LastLogin),
		LastFailedLogin: jobs.FormatTime(u.LastFailedLogin), NFailedLogins: u.NFailedLogins,
		Groups: renderList(u.Groups, renderGroup), Timezone: renderTimezone(u.Timezone), OwnerUserID: u.ID, OwnerUserName: u.Name,
		ACL: userACL}
	if len(u.Groups) > 0 {
		out.OwnerGroupID, out.OwnerGroupName = u.Groups[0].ID, u.Groups[0].Name
	}
	return out
}

// userReply is the reply about one user.
type userReply struct {
	Envelope
	User wireUser `json:"user"`
}

// usersReply is a listing of users.
type usersReply struct {
	Envelope
	Total int        `json:"total"`
	Users []wireUser `json:"users"`
}

// wireGroup is a CmonGroup, as s9s's S9sGroup reads it. Groups are the
// superusers' to manage: the admin user and the admins group own them.
type wireGroup struct {
	ClassName      string `json:"class_name"`
	CdtPath        string `json:"cdt_path"`
	GroupID        int64  `json:"group_id"`
	GroupName      string `json:"group_name"`
	Created        string `json:"created"`
	OwnerUserName  string `json:"owner_user_name"`
	OwnerGroupName string `json:"owner_group_name"`
	ACL            string `json:"acl"`
}

func renderGroup(g rbac.Group) wireGroup {
	return wireGroup{ClassName: "CmonGroup", CdtPath: "/groups", GroupID: g.ID, GroupName: g.Name, Created: jobs.FormatTime(g.Created),
		OwnerUserName: rbac.AdminUser, OwnerGroupName: rbac.AdminsGroup, ACL: groupACL}
}

// wireTimezone is a CmonTimeZone; offset is in seconds west of UTC, as the
// original controller reports it (CET is -3600).
type wireTimezone struct {
	ClassName    string `json:"class_name"`
	Name         string `json:"name"`
	Abbreviation string `json:"abbreviation"`
	Offset       int    `json:"offset"`
	UseDST       bool   `json:"use_dst"`
}

func renderTimezone(name string) wireTimezone {
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc, name = time.UTC, "UTC"
	}
	now := time.Now().In(loc)
	abbrev, offset := now.Zone()
	year := now.Year()
	_, jan := time.Date(year, 1, 1, 0, 0, 0, 0, loc).Zone()
	_, jul := time.Date(year, 7, 1, 0, 0, 0, 0, loc).Zone()
	return wireTimezone{ClassName: "CmonTimeZone", Name: name, Abbreviation: abbrev, Offset: -offset, UseDST: jan != jul}
}
