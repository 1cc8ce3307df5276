// Package etc holds the files cmon ships beside its binary: the default
// configuration (default/cmon) and the Casbin access model, which is compiled
// in so that a controller never runs with a model other than its own.
package etc

import _ "embed"

// RBACModel is the Casbin model text of rbac_model.conf.
//
//go:embed rbac_model.conf
var RBACModel string
